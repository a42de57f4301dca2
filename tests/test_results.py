"""`lamed results` against a real `lamed serve` seeded with track calls, stub APIs for the
failures, and a moto server for finding the deployed API through AWS."""

import csv
import io
import json
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from click.testing import CliRunner

from lamed import planner, report, stats
from lamed.cli import cli
from lamed.redis_server import free_port
from lamed.store import Store
from results_api import API_KEY, BUTTON, seed, server  # noqa: F401 (server is a fixture)

ISOLATED = {"LAMED_API_KEY": None, "LAMED_ENDPOINT": None, "LAMED_CONFIG": None}

# An original Lamed deployment's answer: no "variants", an experiment without goals listed bare.
LAMED_BODY = [
    {"meta": {"scope": None}},
    {
        "experiment": "headline",
        "goals": [{"goal": "read", "results": [
            {"label": "b", "successes": 30, "trials": 150},
            {"label": "a", "successes": 15, "trials": 140},
        ]}],  # fmt: skip
    },
    {"experiment": "empty", "goals": []},
]


@pytest.fixture(scope="module")
def seeded(server, redis_server):
    """Experiments in two namespaces; the expected figures straight from lamed.stats (daily counts included, as `lamed results` reads them)."""
    redis_server.client().flushall()
    seed(server.url, "button colour", BUTTON)
    seed(server.url, "pricing", {"control": (3, {}), "cheap": (2, {})})
    seed(server.url, "banner", {"control": (20, {}), "big": (20, {"click": 3})})  # the control never converts
    seed(server.url, "layout", {"wide": (120, {"buy": 12}), "narrow": (110, {"buy": 9})}, namespace="shop")
    store = Store(redis_server.client())
    return {ns: stats.analyse(store.results(ns, days=True), ns) for ns in ("alephbet", "shop")}


def as_reported(analysis: dict) -> dict:
    """lamed.stats' figures as `lamed results` reports them: with lamed.report's declaration fields
    (none of the seeded experiments is declared)."""
    undeclared = report.declaration_fields(None)
    return analysis | {"experiments": [experiment | undeclared for experiment in analysis["experiments"]]}


@pytest.fixture
def experiments_url(server, seeded):
    return f"{server.url}/prod/experiments"


class Stub(BaseHTTPRequestHandler):
    """Answers GET /{status}/{kind} with that status and a canned body."""

    BODIES = {
        "gateway": json.dumps({"message": "Internal server error"}),
        "redis": json.dumps({"error": "Redis unavailable, try again: Connection refused"}),
        "html": "<!doctype html><html><body>Welcome to nginx!</body></html>",
        "object": json.dumps({"hello": "world"}),
        "badgoal": json.dumps([{"experiment": "x", "goals": [{"goal": "g", "results": [{"label": "a"}]}]}]),
        "lamed": json.dumps(LAMED_BODY),
        "lambda": json.dumps({"errorMessage": "Error 111 connecting to redis:6379.", "errorType": "ConnectionError"}),
    }

    def do_GET(self):
        _, status, kind = self.path.split("?")[0].split("/")
        body = self.BODIES[kind].encode()
        self.send_response(int(status))
        self.send_header("Content-Type", "text/html" if kind == "html" else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(*args, env=None):
    return CliRunner().invoke(cli, ["results", *args], env={**ISOLATED, **(env or {})})


def one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


# -- the formats ----------------------------------------------------------------------------


def test_json_is_exactly_the_figures_of_lamed_stats(experiments_url, seeded):
    result = run("--endpoint", experiments_url, "--api-key", API_KEY, "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body == json.loads(json.dumps(as_reported(seeded["alephbet"])))
    button = next(e for e in body["experiments"] if e["experiment"] == "button colour")
    assert button["control"] == "control"
    rows = {row["label"]: row for row in button["goals"][0]["variants"]}
    assert button["goals"][0]["goal"] == "signup"
    assert (rows["red"]["trials"], rows["red"]["successes"], rows["red"]["rate"]) == (200, 40, 0.2)
    assert [rows["control"][name] for name in ("uplift", "p_value", "chance_to_beat_control")] == [None] * 3
    assert rows["red"]["uplift"] == pytest.approx(1.0)
    # The contract of issue 11: always-valid figures and a decision on every variant row.
    assert [rows["control"][name] for name in stats.SEQUENTIAL] == [None] * 3
    assert rows["red"]["decision"] == "inconclusive" and rows["green"]["decision"] == "insufficient_data"
    low, high = rows["red"]["sequential_uplift_ci"]
    assert 0 < rows["red"]["sequential_p_value"] <= 1 and low < rows["red"]["uplift"] < high


def test_json_never_carries_nan(experiments_url, monkeypatch):
    """render_json refuses NaN instead of writing invalid JSON."""
    results = report.load_results(experiments_url, API_KEY, "alephbet")
    results.analysis["experiments"][0]["srm_p_value"] = float("nan")
    with pytest.raises(ValueError, match="not JSON compliant"):
        report.render_json(results)


def test_table_shows_figures_participants_and_verdicts(experiments_url, seeded):
    result = run("--endpoint", experiments_url, "--api-key", API_KEY)
    assert result.exit_code == 0, result.output
    out = result.output
    button = next(e for e in seeded["alephbet"]["experiments"] if e["experiment"] == "button colour")
    red = next(row for row in button["goals"][0]["variants"] if row["label"] == "red")
    assert out.startswith("namespace alephbet: 3 experiments\n(seq. = always valid")
    assert "participants: control 200, green 60, red 200" in out
    assert f"{red['p_value']:.4f}" in out and "20.00%" in out and "+100.0%" in out
    assert f"{red['sequential_p_value']:.4f}" in out
    assert report.interval(red["rate_ci"]) in out and report.interval(red["sequential_uplift_ci"], signed=True) in out
    header = next(line.split() for line in out.splitlines() if line.strip().startswith("variant"))
    assert header == ("variant trials successes rate rate 95% CI uplift seq. p seq. uplift CI "
                      "fixed p fixed uplift 95% CI fixed chance to beat still needed/variant days left").split()  # fmt: skip
    # The verdicts come from the decision alone: a fixed-horizon p of 0.004 is not a win.
    uplift = report.interval(red["sequential_uplift_ci"], signed=True)
    assert red["p_value"] < 0.01 and f"red: no clear difference yet (uplift {uplift}" in out
    assert "red converts" not in out
    assert "green: not enough data yet (fewer than 100 participants on a side)" in out
    # An experiment with participants and no goal yet is listed, with its participants.
    assert "pricing  (control: control" in out and "participants: control 3, cheap 2" in out
    assert "no goal reached yet" in out


def test_table_says_why_a_figure_is_missing(experiments_url):
    result = run("--endpoint", experiments_url, "--api-key", API_KEY, "--experiment", "banner")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    big = next(line for line in lines if line.strip().startswith("big"))
    assert big.split("]")[1].split()[0] == "—¹"  # the uplift, right after the rate interval
    assert "    ¹ the control has a 0% rate" in lines
    assert "big: not enough data yet (fewer than 100 participants on a side)" in result.output


def test_csv_has_one_row_per_variant_and_goal_at_full_precision(experiments_url, seeded):
    result = run("--endpoint", experiments_url, "--api-key", API_KEY, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert tuple(rows[0]) == report.CSV_COLUMNS
    button = next(e for e in seeded["alephbet"]["experiments"] if e["experiment"] == "button colour")
    for expected in button["goals"][0]["variants"]:
        row = next(r for r in rows if r["experiment"] == "button colour" and r["variant"] == expected["label"])
        assert row["goal"] == "signup"
        assert (int(row["trials"]), int(row["successes"])) == (expected["trials"], expected["successes"])
        assert float(row["rate"]) == expected["rate"]
        assert [float(row["rate_ci_low"]), float(row["rate_ci_high"])] == expected["rate_ci"]
        if expected["label"] == "control":
            assert (row["is_control"], row["uplift"], row["p_value"], row["decision"]) == ("true", "", "", "")
            assert row["sequential_p_value"] == row["sequential_uplift_ci_low"] == ""
        else:
            assert float(row["p_value"]) == expected["p_value"]
            assert float(row["chance_to_beat_control"]) == expected["chance_to_beat_control"]
            assert (float(row["sequential_p_value"]) if row["sequential_p_value"] else None) == expected["sequential_p_value"]
            bounds = [float(row["sequential_uplift_ci_low"]), float(row["sequential_uplift_ci_high"])]
            assert bounds == expected["sequential_uplift_ci"] and row["decision"] == expected["decision"]
    pricing = [r for r in rows if r["experiment"] == "pricing"]
    assert [(r["variant"], r["goal"], r["trials"]) for r in pricing] == [("control", "", "3"), ("cheap", "", "2")]
    big = next(r for r in rows if r["experiment"] == "banner" and r["variant"] == "big")
    assert big["notes"].startswith("No uplift, fixed-horizon uplift interval or always-valid uplift interval for big: "
                                   "the control has a 0% rate.")  # fmt: skip


def test_experiment_and_control_choose_what_is_compared(experiments_url):
    result = run("--endpoint", experiments_url, "--api-key", API_KEY, "--experiment", "button colour",
                 "--control", "red", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [e["experiment"] for e in body["experiments"]] == ["button colour"]
    assert body["experiments"][0]["control"] == "red"
    control_row = next(r for r in body["experiments"][0]["goals"][0]["variants"] if r["label"] == "control")
    assert control_row["uplift"] == pytest.approx(-0.5)


def test_mde_sizes_the_undecided_comparisons_and_days_come_from_the_daily_counts(experiments_url, seeded):
    """The seeded counts were all tracked today: one day of traffic, so the days remaining are
    the participants still needed over today's participants (the slower side's)."""
    result = run("--endpoint", experiments_url, "--api-key", API_KEY, "--experiment", "button colour",
                 "--format", "json", "--mde", "5%")  # fmt: skip
    assert result.exit_code == 0, result.output
    red = next(r for r in json.loads(result.output)["experiments"][0]["goals"][0]["variants"] if r["label"] == "red")
    expected = planner.participants_per_variant(0.1, 0.05, comparisons=2) - 200
    assert red["decision"] == "inconclusive" and red["needed_per_variant"] == expected
    assert red["days_remaining"] == math.ceil(expected / 200)
    observed = next(e for e in seeded["alephbet"]["experiments"] if e["experiment"] == "button colour")
    assert observed["goals"][0]["variants"][2]["needed_per_variant"] != expected  # sized for the observed +100%
    table = run("--endpoint", experiments_url, "--api-key", API_KEY, "--experiment", "button colour", "--mde", "5%")
    assert "red: no clear difference yet" in table.output and f"about {expected:,} more participants per variant" in table.output
    bad = run("--endpoint", experiments_url, "--api-key", API_KEY, "--mde", "five")
    assert bad.exit_code == 1 and bad.output == "Error: --mde 'five' is not a percentage: write it like 10%\n"
    none = run("--endpoint", experiments_url, "--api-key", API_KEY, "--mde", "0%")
    assert none.exit_code == 1 and "is no effect to size for" in none.output


def test_namespace_comes_from_the_option_else_the_config(experiments_url, tmp_path, seeded):
    by_option = run("--endpoint", experiments_url, "--api-key", API_KEY, "--namespace", "shop", "--format", "json")
    assert json.loads(by_option.output) == json.loads(json.dumps(as_reported(seeded["shop"])))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"namespace": "shop"}))
    by_config = run("--endpoint", experiments_url, "--api-key", API_KEY, env={"LAMED_CONFIG": str(config)})
    assert by_config.exit_code == 0, by_config.output
    assert by_config.output.startswith("namespace shop: 1 experiment\n") and "layout" in by_config.output
    empty = run("--endpoint", experiments_url, "--api-key", API_KEY, "--namespace", "nothing-here")
    assert "no experiments yet" in empty.output and empty.exit_code == 0


def test_an_original_lamed_answer_is_read_too(stub):
    result = run("--endpoint", f"{stub}/200/lamed", "--api-key", "k")
    assert result.exit_code == 0, result.output
    assert "participants: a 140, b 150" in result.output
    assert "headline  (control: a" in result.output
    body = json.loads(run("--endpoint", f"{stub}/200/lamed", "--format", "json").output)
    assert body == json.loads(json.dumps(as_reported(stats.analyse(LAMED_BODY[1:], "alephbet"))))


# -- one line for each failure ----------------------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [("wrong-key", "refused the request (HTTP 403): pass the right --api-key"),
     (None, "refused the request (HTTP 403): pass --api-key KEY")],
)  # fmt: skip
def test_a_refused_key_is_one_line(experiments_url, key, expected):
    args = ["--endpoint", experiments_url] + (["--api-key", key] if key else [])
    line = one_line_error(run(*args))
    assert line == f"Error: {experiments_url} {expected}"


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/500/gateway", "failed with HTTP 500 (Internal server error): the API or its Redis has a problem, try again"),
        ("/503/redis", "failed with HTTP 503 (Redis unavailable, try again: Connection refused)"),
        ("/200/html", "did not answer with Lamed's results (not JSON: '<!doctype html><html><body>Welcome to ng'...)"),
        ("/200/object", "did not answer with Lamed's results (a JSON dict, not a list)"),
        ("/200/badgoal", "did not answer with Lamed's results (experiment 'x' has no 'trials' int)"),
        ("/404/object", "answered HTTP 404: is it the experiments URL, ending in /experiments?"),
        ("/200/lambda", "answered with a Lambda error (Error 111 connecting to redis:6379.): see the function's"),
    ],
)
def test_server_errors_and_foreign_bodies_are_one_line(stub, path, expected):
    line = one_line_error(run("--endpoint", stub + path, "--api-key", "k"))
    assert line.startswith(f"Error: {stub}{path} {expected}")


def test_a_timeout_is_one_line():
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/prod/experiments"
        line = one_line_error(run("--endpoint", url, "--api-key", "k", "--timeout", "0.3"))
    assert line == f"Error: no answer from {url} within 0.3 s: try again, or raise --timeout"


def test_connection_failures_and_bad_urls_are_one_line():
    url = f"http://127.0.0.1:{free_port()}/prod/experiments"
    assert one_line_error(run("--endpoint", url, "--api-key", "k")).startswith(f"Error: cannot connect to {url}: ")
    line = one_line_error(run("--endpoint", "127.0.0.1:8000/experiments"))
    assert line.startswith("Error: --endpoint '127.0.0.1:8000/experiments' is not an http(s) URL")


def test_unknown_experiment_or_control_is_one_line(experiments_url):
    line = one_line_error(run("--endpoint", experiments_url, "--api-key", API_KEY, "--experiment", "nope"))
    assert line == "Error: no experiment 'nope' in namespace 'alephbet' (experiments: banner, button colour, pricing)"
    line = one_line_error(
        run("--endpoint", experiments_url, "--api-key", API_KEY, "--experiment", "button colour", "--control", "blue")
    )
    assert "blue" in line


# -- the verdict rule -----------------------------------------------------------------------


def row(label, trials, decision, p=None, ci=None, uplift=None, **notes):
    return {"label": label, "trials": trials, "decision": decision, "sequential_p_value": p,
            "sequential_uplift_ci": ci, "uplift": uplift, "notes": notes}  # fmt: skip


@pytest.mark.parametrize(
    "variant, kind, text",
    [
        (row("red", 500, "winner", 0.003, [0.05, 0.4], 0.2), "winner",
         "red converts 20.0% more than control (uplift [+5.0%, +40.0%], always-valid p = 0.003)"),
        (row("red", 500, "loser", 0.0004, [-0.5, -0.1], -0.3), "loser",
         "red converts 30.0% less than control (uplift [-50.0%, -10.0%], always-valid p < 0.001)"),
        (row("red", 500, "inconclusive", 0.41, [-0.1, 0.3], 0.1), "inconclusive",
         "red: no clear difference yet (uplift [-10.0%, +30.0%], always-valid p = 0.41)"),
        (row("red", 99, "insufficient_data", 0.0001, [0.5, 9.0], 2.0), "insufficient_data",
         "red: not enough data yet (fewer than 100 participants on a side)"),
        (row("red", 0, "insufficient_data", sequential_p_value="the variant has no participants yet"),
         "insufficient_data", "red: not enough data yet (the variant has no participants yet)"),
        (row("red", 500, "insufficient_data", sequential_p_value="no conversions in either variant"),
         "insufficient_data", "red: not enough data yet (no conversions in either variant)"),
        (row("red", 500, "winner", 0.003, [0.05, 400.0], 0.2), "winner",
         "red converts 20.0% more than control (uplift [+5.0%, >+10,000%], always-valid p = 0.003)"),
        (row("red", 500, "winner", 0.001, [2.0, 400.0], 150.0), "winner",
         "red converts over 10,000% more than control (uplift [+200.0%, >+10,000%], always-valid p = 0.001)"),
        (row("control", 500, None), "control", "control is the control, the baseline of the others"),
    ],
)  # fmt: skip
def test_the_verdict_speaks_from_the_decision(variant, kind, text):
    assert report.verdict(variant, "control") == report.Verdict(kind, text)


# -- finding the deployed API through AWS -------------------------------------------------


@pytest.fixture
def aws(moto_server):
    """An empty moto account, and the region the commands are told to use."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    region = "eu-west-1"
    return boto3.client("apigateway", region_name=region), region


def run_in(region, *args):
    return CliRunner().invoke(cli, ["--region", region, "results", *args], env=ISOLATED)


def test_without_a_deployment_the_line_says_what_to_do(aws):
    _, region = aws
    line = one_line_error(run_in(region))
    assert line == (
        f"Error: no lamed deployment found in {region} — run `lamed deploy`, or pass --endpoint URL --api-key KEY"
    )


def test_the_deployed_api_and_its_key_are_found_through_aws(aws):
    client, region = aws
    api_id = client.create_rest_api(name="lamed")["id"]
    client.create_api_key(name="lamed", value="deployed-key-0123456789abcdef", enabled=True)
    url = f"https://{api_id}.execute-api.{region}.amazonaws.com/prod/experiments"
    assert report.discover_endpoint(None, region) == (url, "deployed-key-0123456789abcdef")
    # The call to execute-api itself cannot succeed offline: its one line names the URL found.
    line = one_line_error(run_in(region, "--timeout", "5"))
    assert url in line
    misuse = run_in(region, "--api-key", "k")
    assert misuse.exit_code == 2 and "Error: --api-key goes with --endpoint URL" in misuse.output


def test_a_decided_comparison_leaves_what_is_still_needed_blank():
    """Its needed_per_variant and days_remaining are null with the note `already decided` in the
    JSON; the table and the sentences leave them out, since the verdict says it."""
    trials = {"control": 10_000, "red": 10_000}
    entry = {"experiment": "e", "variants": [{"label": label, "trials": n} for label, n in trials.items()],
             "goals": [{"goal": "g", "results": [{"label": "control", "successes": 1000, "trials": 10_000},
                                                 {"label": "red", "successes": 1200, "trials": 10_000}]}]}  # fmt: skip
    found = report.analyse_entries([entry], "ns", "src")
    red = found.analysis["experiments"][0]["goals"][0]["variants"][1]
    assert red["decision"] == "winner" and red["notes"] == dict.fromkeys(stats.WAITING, stats.DECIDED_NOTE)
    assert report.figure_cells(red, False)[-2:] == [("", ""), ("", "")]
    assert report.note_sentences(red) == [] and "already decided" not in report.render_table(found)


@pytest.mark.parametrize(
    "given, read",
    [
        ("http://h:8000", "http://h:8000/prod/experiments"),
        ("https://id.execute-api.eu-west-1.amazonaws.com/", "https://id.execute-api.eu-west-1.amazonaws.com/prod/experiments"),
        ("http://h:8000/prod", "http://h:8000/prod/experiments"),
        ("http://h:8000/staging_2/", "http://h:8000/staging_2/experiments"),  # another stage
        ("http://h:8000/experiments", "http://h:8000/experiments"),  # a resource of Lamed's API, not a stage
        ("http://h:8000/experiment", "http://h:8000/experiment"),
        ("http://h:8000/200/lamed", "http://h:8000/200/lamed"),  # any other path: as given
        ("http://h:8000/index.html", "http://h:8000/index.html"),  # not a stage name
        ("http://h:8000/?x=1", "http://h:8000/?x=1"),
    ],
)  # fmt: skip
def test_a_base_or_stage_url_reads_its_experiments_url(given, read):
    assert report.experiments_url(given) == read
