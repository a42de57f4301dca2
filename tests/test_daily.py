"""Results over time (issue 11, part 5): the daily counts in both layouts on real Redis (written
with the count, deleted with the experiment, invisible to Lamed's reads), ``days=1`` on the
API, the analysis per day, ``lamed results --format csv --days`` exact, and the over-time chart."""

import base64
import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from click.testing import CliRunner

from lamed import handlers, stats
from lamed.cli import cli
from lamed.cluster_store import ClusterStore, bucket_tag, counter_field, counts_key
from lamed.connection import redis_client
from lamed.serve import make_server
from lamed.store import Store
from lamed.timeline import cumulative_counts, over_time
from handler_calls import call
from redis_servers import CountingConnection, turnarounds
from test_dashboard import PIXEL_AT

DAY = 86400
MARCH_1 = 1_772_323_200  # 2026-03-01 00:00:00 UTC
API_KEY = "daily-test-key-0123456789abcdef"


class Clock:
    """The time a store counts at: the test moves it."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def two_days(store, clock: Clock) -> None:
    """The same events in every layout: day 1 a, b and a goal; day 2 (just past midnight) more, and repeats."""
    clock.now = MARCH_1 + DAY - 0.5  # 23:59:59.5 on March 1st
    for uuid, variant in (("u1", "a"), ("u2", "b"), ("u3", "a")):
        assert store.track("ns", "e:x", variant, "participate", uuid)
    assert store.track("ns", "e:x", "a", "signup", "u1")
    clock.now = MARCH_1 + DAY  # midnight: March 2nd
    assert not store.track("ns", "e:x", "a", "participate", "u1")  # a repeat counts on no day
    assert store.track("ns", "e:x", "b", "participate", "u4")
    assert store.track("ns", "e:x", "b", "signup", "u2")


EXPECTED_DAILY = {
    "2026-03-01": {"participate": {"a": 2, "b": 1}, "signup": {"a": 1}},
    "2026-03-02": {"participate": {"b": 1}, "signup": {"b": 1}},
}


def test_lameds_layout_counts_each_utc_day_in_the_track_transaction(redis_server, redis_client):
    clock = Clock(0)
    store = Store(redis_server.client(), clock=clock)
    two_days(store, clock)
    assert redis_client.hgetall("ns:lamed:e:x:daily") == {
        "2026-03-01:participate:a": "2", "2026-03-01:participate:b": "1", "2026-03-01:signup:a": "1",
        "2026-03-02:participate:b": "1", "2026-03-02:signup:b": "1",
    }  # fmt: skip
    # Lamed's own reads (its indexes) never meet the new key, and its keys are Lamed's.
    assert redis_client.smembers("ns:experiments") == {"e:x"}
    assert all(":daily" not in key for key in redis_client.smembers("ns:counter_keys"))
    assert redis_client.smembers("ns:e:x:counter_keys") == redis_client.smembers("ns:counter_keys")
    plain = store.results("ns")
    assert "daily" not in plain[0]
    with_days = store.results("ns", days=True)
    assert with_days[0]["daily"] == EXPECTED_DAILY
    assert {key: value for key, value in with_days[0].items() if key != "daily"} == plain[0]


def test_the_cluster_layout_counts_days_in_the_counters_slot_with_the_same_json(redis_cluster, redis_server):
    clock = Clock(0)
    store = ClusterStore(redis_client({"url": redis_cluster.url, "cluster": True}), 86400, clock=clock)
    two_days(store, clock)
    field = counter_field("e:x", "participate", "a")
    tag = bucket_tag(field)
    node = redis_cluster.node_of(counts_key(tag, "ns")).client()
    assert node.hget(counts_key(tag, "ns", "daily"), '["e:x","participate","a","2026-03-01"]') == b"2"
    lamed_layout = Store(redis_server.client(), clock=clock)
    redis_server.client().flushall()
    two_days(lamed_layout, clock)
    assert store.results("ns", days=True) == lamed_layout.results("ns", days=True)
    assert store.experiment("ns", "e:x", days=True)["daily"] == EXPECTED_DAILY
    assert "daily" not in store.experiment("ns", "e:x")
    store.client.close()


def test_reading_the_days_costs_no_extra_round_trip_in_either_layout(redis_server, redis_cluster):
    pool = redis.ConnectionPool(connection_class=CountingConnection, port=redis_server.port)
    lamed_layout = Store(redis.Redis(connection_pool=pool), clock=Clock(MARCH_1))
    redis_server.client().flushall()
    clustered = ClusterStore(redis_client({"url": redis_cluster.url, "cluster": True, "connection_class": CountingConnection}),
                             86400, clock=Clock(MARCH_1))  # fmt: skip
    for store in (lamed_layout, clustered):
        for n in range(30):
            store.track("ns", f"exp{n}", "a", "participate", "u")
        store.results("ns", days=True)  # every connection made once
    # The set of experiments, the key sets and daily hashes in one pipeline, one MGET; a pipeline per shard.
    assert turnarounds(lambda: lamed_layout.results("ns")) == turnarounds(lambda: lamed_layout.results("ns", days=True)) == (3, 0)
    assert turnarounds(lambda: clustered.results("ns")) == turnarounds(lambda: clustered.results("ns", days=True)) == (3, 0)
    # Counting a day costs nothing more either: 2 round trips in Lamed's layout, 1 in the cluster's.
    assert turnarounds(lambda: lamed_layout.track("ns", "exp0", "a", "participate", "new")) == (2, 0)
    assert turnarounds(lambda: clustered.track("ns", "exp0", "a", "participate", "new")) == (1, 0)
    clustered.client.close()


def day_sums(entry: dict) -> dict:
    sums = {}
    for events in entry.get("daily", {}).values():
        for event, variants in events.items():
            for variant, count in variants.items():
                sums[event, variant] = sums.get((event, variant), 0) + count
    return sums


def totals(entry: dict) -> dict:
    found = {("participate", v["label"]): v["trials"] for v in entry["variants"] if v["trials"]}
    for goal in entry["goals"]:
        found |= {(goal["goal"], r["label"]): r["successes"] for r in goal["results"] if r["successes"]}
    return found


def delete_while_tracking(store, keys_left) -> None:
    """16 threads count while the experiment is deleted twice: whatever survives has days that
    sum exactly to its counters, and a last delete leaves no key of it."""
    def track(index):
        store.track("ns", "e", f"v{index % 3}", "participate" if index % 2 else "goal", f"u{index}")

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(track, index) for index in range(600)]
        for _ in range(2):
            store.delete("ns", "e")
        for future in futures:
            future.result()
    entry = store.experiment("ns", "e", days=True)
    if entry is not None:
        assert day_sums(entry) == totals(entry)
    assert store.delete("ns", "e") is not None or entry is None
    assert store.experiment("ns", "e", days=True) is None
    assert keys_left() == set()


def test_lameds_layout_deletes_the_days_with_the_experiment_under_concurrent_tracking(redis_server, redis_client):
    store = Store(redis_server.client(max_connections=32), clock=Clock(MARCH_1))
    delete_while_tracking(store, lambda: {key for key in redis_client.keys("ns:*")} - {"ns:experiments", "ns:counter_keys"})
    assert redis_client.smembers("ns:counter_keys") == set()


def test_the_cluster_layout_deletes_the_days_with_the_experiment_under_concurrent_tracking(redis_cluster):
    store = ClusterStore(redis_client({"url": redis_cluster.url, "cluster": True}), 86400, clock=Clock(MARCH_1))
    nodes = [node.client() for node in redis_cluster.nodes]
    delete_while_tracking(store, lambda: {key for node in nodes for key in node.keys("*ns:*") if node.hlen(key)})
    store.client.close()


def test_days_must_be_0_or_1(handler_store):
    assert call(handlers.all_experiments, {"days": "yes"}) == (400, {"error": "parameter 'days' must be 1 (with the daily counts) or 0"})
    assert call(handlers.experiment, {"experiment": "e", "days": "2"})[0] == 400
    handler_store.track("alephbet", "e", "a", "participate", "u")
    assert "daily" not in call(handlers.all_experiments, {"days": "0"})[1][1]
    assert list(call(handlers.experiment, {"experiment": "e", "days": "1"})[1]["daily"].values()) == [{"participate": {"a": 1}}]


# -- the analysis over time ------------------------------------------------------------------


def entry_of(days: dict[str, dict], undated: dict | None = None) -> dict:
    """An experiment entry whose totals are its days plus ``undated`` counts (older than the series)."""
    sums = dict(undated or {})
    for events in days.values():
        for event, variants in events.items():
            for variant, count in variants.items():
                sums[event, variant] = sums.get((event, variant), 0) + count
    labels = sorted({variant for _, variant in sums})
    goals = sorted({event for event, _ in sums if event != "participate"})
    return {
        "experiment": "e",
        "goals": [{"goal": goal, "results": [{"label": v, "successes": sums.get((goal, v), 0), "trials": sums.get(("participate", v), 0)} for v in labels]} for goal in goals],
        "variants": [{"label": v, "trials": sums.get(("participate", v), 0)} for v in labels],
        "daily": days,
    }  # fmt: skip


def test_cumulative_counts_fill_gaps_and_carry_counts_older_than_the_series():
    entry = entry_of({"2026-02-27": {"participate": {"a": 5}}, "2026-03-01": {"participate": {"a": 1}, "g": {"a": 1}}},
                     undated={("participate", "a"): 10, ("g", "a"): 2})  # fmt: skip
    assert cumulative_counts(entry) == [
        ("2026-02-27", {("participate", "a"): 15, ("g", "a"): 2}),
        ("2026-02-28", {("participate", "a"): 15, ("g", "a"): 2}),
        ("2026-03-01", {("participate", "a"): 16, ("g", "a"): 3}),
    ]
    assert cumulative_counts({**entry, "daily": {}}) == []


def decided_series() -> dict:
    """Control 10% every day, b 30%: b is a winner on some day; c equal to the control."""
    return {f"2026-03-0{day}": {"participate": {"control": 100, "b": 100, "c": 100}, "signup": {"control": 10, "b": 30, "c": 10}}
            for day in range(1, 6)}  # fmt: skip


def test_the_decision_day_is_the_first_day_the_running_minimum_decides():
    series = over_time(entry_of(decided_series()), "control")
    b = next(v for v in series["goals"][0]["variants"] if v["label"] == "b")
    # An independent computation: Holm over each day's running minimum of the raw always-valid p.
    running, first = [None, None], None
    for index, (day, counts) in enumerate(cumulative_counts(entry_of(decided_series()))):
        pair = lambda v: (counts[("signup", v)], counts[("participate", v)])  # noqa: E731
        raw = [stats.always_valid_p_value(*pair(v), *pair("control")) for v in ("b", "c")]
        running = [p if r is None else min(p, r) for p, r in zip(raw, running)]
        adjusted = stats.holm(running)
        assert b["points"][index]["sequential_p_value"] == pytest.approx(adjusted[0], rel=1e-12)
        if first is None and adjusted[0] <= stats.ALPHA and counts[("participate", "b")] >= stats.MIN_TRIALS:
            first = day
    assert first is not None and first != "2026-03-01"
    assert b["decision_day"] == first and b["decision"] == "winner"
    c = next(v for v in series["goals"][0]["variants"] if v["label"] == "c")
    assert c["decision_day"] is None and c["decision"] == "inconclusive"
    assert "decision" not in series["goals"][0]["variants"][0]  # the control
    json.dumps(series, allow_nan=False)


def test_a_decision_once_reached_is_kept_when_later_days_weaken_the_evidence():
    days = decided_series()
    for day in ("2026-03-06", "2026-03-07", "2026-03-08"):
        days[day] = {"participate": {"control": 400, "b": 400, "c": 400}, "signup": {"control": 60, "b": 40, "c": 60}}
    series = over_time(entry_of(days), "control")
    b = next(v for v in series["goals"][0]["variants"] if v["label"] == "b")
    today = stats.analyse([entry_of(days)], "ns")["experiments"][0]["goals"][0]["variants"][1]
    assert today["decision"] == "inconclusive"  # today's counts alone no longer decide
    assert b["decision"] == "winner" and [p["decision"] for p in b["points"]][-1] == "winner"


def test_days_without_participants_have_no_rate_and_no_nan():
    series = over_time(entry_of({"2026-03-01": {"signup": {}}, "2026-03-02": {"participate": {"a": 1, "b": 2}}}), "a")
    points = series["goals"][0]["variants"][0]["points"] if series["goals"] else []
    text = json.dumps(series, allow_nan=False)
    assert "NaN" not in text and all(point["rate"] is None for point in points[:1])


# -- through lamed serve's server: days=1, CSV --days exact, the chart -------------------------------


@pytest.fixture(scope="module")
def seeded_server(redis_server):
    """serve's server on the test Redis, its store counting on a clock the test set: five days
    of decided_series()'s traffic, sent through store.track."""
    client = redis_server.client()
    client.flushall()
    clock = Clock(0)
    store = Store(client, clock=clock)
    for day, events in sorted(decided_series().items()):
        clock.now = MARCH_1 + (int(day[-1]) - 1) * DAY + 3600
        for variant, n in events["participate"].items():
            for index in range(n):
                uuid = f"{day}-{variant}-{index}"
                store.track("ns", "headline", variant, "participate", uuid)
                if index < events["signup"][variant]:
                    store.track("ns", "headline", variant, "signup", uuid)
    with make_server("127.0.0.1", 0, API_KEY, store) as running:
        yield running.start()


def test_csv_days_is_exact(seeded_server):
    result = CliRunner().invoke(cli, ["results", "--endpoint", f"{seeded_server.url}/prod/experiments",
                                      "--api-key", API_KEY, "--namespace", "ns", "--format", "csv", "--days"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 5 * 3 and "nan" not in result.output.lower() and "inf" not in result.output.lower()
    series = over_time(entry_of(decided_series()), "control")
    b_day = next(v for v in series["goals"][0]["variants"] if v["label"] == "b")["decision_day"]
    for index, row in enumerate(rows):
        day, label = f"2026-03-0{index // 3 + 1}", ("control", "b", "c")[index % 3]
        n = 100 * (index // 3 + 1)
        s = n // 10 * (3 if label == "b" else 1)
        low, high = stats.wilson_interval(s, n)
        assert row == {
            "namespace": "ns", "experiment": "headline", "goal": "signup", "day": day, "variant": label,
            "is_control": "true" if label == "control" else "false", "trials": str(n), "successes": str(s),
            "rate": repr(s / n), "rate_ci_low": repr(low), "rate_ci_high": repr(high),
            "sequential_p_value": row["sequential_p_value"] if label != "control" else "",
            "decision": row["decision"] if label != "control" else "",
            "decision_day": (b_day if label == "b" else "") if label != "control" else "",
        }  # fmt: skip
        if label == "b":
            assert row["decision"] == ("winner" if day >= b_day else "inconclusive" if n >= 100 else "insufficient_data")
    plain = CliRunner().invoke(cli, ["results", "--endpoint", f"{seeded_server.url}/prod/experiments", "--api-key",
                                     API_KEY, "--namespace", "ns", "--days"])  # fmt: skip
    assert plain.exit_code == 2 and "--format csv" in plain.output


def test_the_api_keeps_lameds_shape_unless_days_is_1(seeded_server):
    def get(path, **params):
        response = requests.get(f"{seeded_server.url}/prod/{path}", params={"namespace": "ns", **params},
                                headers={"x-api-key": API_KEY}, timeout=10)  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    plain, dated = get("experiments"), get("experiments", days="1")
    assert [set(entry) for entry in plain[1:]] == [{"experiment", "goals", "variants"}]
    assert dated[1]["daily"] == decided_series() and {k: v for k, v in dated[1].items() if k != "daily"} == plain[1]
    assert get("experiment", experiment="headline", days="1") == dated[1]
    assert "daily" not in get("experiment", experiment="headline")
    # The live dashboard's content reads the days through the same handler and draws them.
    live = requests.get(f"{seeded_server.url}/dashboard", params={"namespace": "ns"}, headers={"x-api-key": API_KEY}, timeout=10)
    assert live.status_code == 200 and live.text.count('<svg class="trend"') == 1 and "b: winner on 2026-03-0" in live.text


def test_the_dashboard_draws_the_rates_over_time_and_the_decision_day(seeded_server, tmp_path, chromium):
    output = tmp_path / "dashboard.html"
    result = CliRunner().invoke(cli, ["dashboard", "--endpoint", f"{seeded_server.url}/prod/experiments", "--api-key",
                                      API_KEY, "--namespace", "ns", "--output", str(output), "--no-open"])  # fmt: skip
    assert result.exit_code == 0, result.output
    html = output.read_text()
    assert API_KEY not in html and "<script" not in html and "NaN" not in html and "src=" not in html
    context = chromium.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.goto(output.as_uri())
    trend = page.locator("svg.trend")
    assert trend.count() == 1
    trend.scroll_into_view_if_needed()
    assert page.locator("svg.trend .series polyline").count() == 3 and page.locator("svg.trend polygon.band").count() == 3
    mark = page.locator("svg.trend .decision.winner line")
    assert mark.count() == 1 and mark.bounding_box()["height"] > 100
    legend = page.locator("svg.trend .legend-item text").all_text_contents()
    assert [text.strip() for text in legend] == ["control (control)", "b", "c"]
    # The screenshot: each line's dots are drawn in its legend's colour, and b's band is shaded
    # (neither the background nor the line) between its line and its interval's edge.
    origin = trend.bounding_box()
    shot = trend.screenshot(path=str(tmp_path / "over-time.png"))

    def centre(locator):
        box = locator.bounding_box()
        return [box["x"] - origin["x"] + box["width"] / 2, box["y"] - origin["y"] + box["height"] / 2]

    b_dot = page.locator("svg.trend .series-1 circle.dot").nth(3)  # a day inside the chart, clear of its edges
    swatches = [page.locator(f"svg.trend .legend-item.series-{n} rect.swatch") for n in range(3)]
    dot_box = b_dot.bounding_box()
    band_point = [centre(b_dot)[0], dot_box["y"] - origin["y"] - 5]  # above the dot, inside its interval
    with context.new_page() as decoder:
        dot, *legend_pixels, band, blank = decoder.evaluate(PIXEL_AT, [base64.b64encode(shot).decode(), [
            centre(b_dot), *map(centre, swatches), band_point, [1, 1]]])  # fmt: skip
    assert dot == legend_pixels[1] == [0x7C, 0x3A, 0xED]
    assert legend_pixels[0] == [0x7A, 0x86, 0x99] and legend_pixels[2] == [0xD9, 0x73, 0x0D]
    assert band not in (blank, dot), (band, blank)
    assert "b: winner on 2026-03-0" in page.locator("svg.trend + p.trend-note").inner_text()
    context.close()
