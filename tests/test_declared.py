"""Declared experiments (config "experiments" and "declared_only") on real Redis, both layouts:
the config's rules, what /track counts, and results a stranger cannot skew (issue 17's attacks:
forty junk goals, a junk variant that would become the control)."""

import json

import pytest

import lamed
from lamed import handlers, report, stats
from lamed.aws.resources import function_environment
from lamed.config import Bounds, ConfigError, parse_config
from lamed.connection import open_store
from lamed.declared import Declarations
from lamed.store import Store
from handler_calls import call

# Issue 17's experiment: red is a winner (always-valid p 0.0025) until forty junk goals join Holm's family.
BUTTON = {"control": (3000, {"signup": 150}), "red": (3000, {"signup": 230})}
JUNK_GOALS = 40


def config_of(raw: dict, path="config.json"):
    return parse_config(raw, path)


def declarations(experiments: dict, declared_only=False, namespace="alephbet") -> Declarations:
    raw = {"experiments": experiments, "declared_only": declared_only, "namespace": namespace}
    return Declarations.of(config_of(raw))


# -- the config ---------------------------------------------------------------------------------


def test_a_declaration_is_normalised_with_its_defaults():
    config = config_of({
        "experiments": {
            "button": {"variants": ["control", "red"], "goals": ["signup", {"name": "views", "unique": False}]},
            "pricing": {"variants": {"cheap": 1, "dear": 3}, "goals": [], "control": "dear", "stopped": True},
        },
        "declared_only": True,
    })  # fmt: skip
    assert config.experiments == {
        "button": {"variants": {"control": 1.0, "red": 1.0}, "goals": {"signup": True, "views": False},
                   "control": "control", "stopped": False},
        "pricing": {"variants": {"cheap": 1.0, "dear": 3.0}, "goals": {}, "control": "dear", "stopped": True},
    }  # fmt: skip
    assert config.declared_only is True and config.warnings == []
    assert config_of({"experiments": {"e": {"variants": ["b", "a"], "goals": []}}}).experiments["e"]["control"] == "b"


def test_no_declaration_by_default():
    config = config_of({})
    assert config.experiments == {} and config.declared_only is False


@pytest.mark.parametrize(
    "raw, problem",
    [
        ({"experiments": []}, '"experiments" must be an object'),
        ({"experiments": {"e": {"variants": ["a", "b"]}}}, '"experiments"."e": must be an object {"variants": ..., "goals": \\[...\\]}'),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": [], "stoped": True}}}, '"experiments"."e": must be an object'),
        ({"experiments": {"e": {"variants": ["a"], "goals": []}}}, '"variants" must be a list of names or an object .* of at least two'),
        ({"experiments": {"e": {"variants": ["a", "a"], "goals": []}}}, "each named once"),
        ({"experiments": {"e": {"variants": "a,b", "goals": []}}}, '"variants" must be a list of names'),
        ({"experiments": {"e": {"variants": {"a": 1, "b": 0}, "goals": []}}}, "the weight of variant 'b' must be a positive number"),
        ({"experiments": {"e": {"variants": {"a": 1, "b": True}, "goals": []}}}, "the weight of variant 'b' must be a positive number"),
        ({"experiments": {"e": {"variants": ["a", "b:c"], "goals": []}}}, "the variant name 'b:c' must not contain ':'"),
        ({"experiments": {"e": {"variants": ["a", "counter_keys"], "goals": []}}}, "the variant name 'counter_keys' must not be 'counter_keys'"),
        ({"experiments": {"e": {"variants": ["a", ""], "goals": []}}}, "the variant name '' is empty"),
        ({"experiments": {"e": {"variants": ["a", "b\x1b[2J"], "goals": []}}}, "must not contain control characters"),
        ({"max_goals": 1, "experiments": {"e": {"variants": ["a", "b"], "goals": ["g", "h"]}}}, 'declares 2 goals, more than "max_goals" \\(1\\)'),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": "signup"}}}, '"goals" must be a list of goal names'),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": ["x:y"]}}}, "the goal name 'x:y' must not contain ':'"),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": ["participate"]}}}, "is the participation event, not a goal"),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": ["g", {"name": "g", "unique": False}]}}}, "the goal 'g' is declared twice"),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": [{"name": "g", "unique": "no"}]}}}, 'a goal object must be {"name": "<goal>", "unique": false}'),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": [7]}}}, '"goals" must be a list of goal names'),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": [], "control": "c"}}}, '"control" must be one of its variants \\(a, b\\), not \'c\''),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": [], "stopped": "yes"}}}, '"stopped" must be true'),
        ({"experiments": {"x" * 257: {"variants": ["a", "b"], "goals": []}}}, "the experiment name 'x+' is longer than 256 characters"),
        ({"experiments": {"e": {"variants": ["a", "b", "c"], "goals": []}}, "max_variants": 2}, 'declares 3 variants, more than "max_variants" \\(2\\)'),
        ({"experiments": {"e": {"variants": ["a", "b"], "goals": []}, "f": {"variants": ["a", "b"], "goals": []}}, "max_experiments": 1},
         '"experiments" declares 2 experiments, more than "max_experiments" \\(1\\)'),
        ({"declared_only": 1}, '"declared_only" must be true'),
        ({"declared_only": True}, '"declared_only" is true but "experiments" declares none'),
    ],
)
def test_a_bad_declaration_is_one_line_naming_the_key(raw, problem):
    with pytest.raises(ConfigError, match=f"^config.json: .*{problem}") as error:
        config_of(raw)
    assert "\n" not in str(error.value)


def test_declarations_travel_to_the_functions_with_their_namespace():
    raw = {"namespace": "shop", "experiments": {"e": {"variants": {"a": 1, "b": 3}, "goals": ["g"]}}, "declared_only": True}
    runtime = json.loads(config_of(raw).runtime_environment()["LAMED_CONFIG_JSON"])
    assert runtime == raw
    deployed = config_of(runtime, "$LAMED_CONFIG_JSON")
    assert (deployed.namespace, deployed.experiments, deployed.declared_only) == ("shop", config_of(raw).experiments, True)
    assert "namespace" not in json.loads(config_of({"namespace": "shop"}).runtime_environment()["LAMED_CONFIG_JSON"])


def test_declarations_beyond_lambdas_environment_limit_are_a_config_error_with_the_fix():
    experiments = {f"experiment-{n:03}": {"variants": ["control", "red"], "goals": ["signup"]} for n in range(100)}
    with pytest.raises(ConfigError, match='4096-byte limit — fix: .* or the "experiments" declared'):
        function_environment(config_of({"experiments": experiments}))


# -- /track, both layouts ------------------------------------------------------------------------


@pytest.fixture(params=["lamed", "cluster"])
def layout(request):
    """The handlers' store in Lamed's layout or the cluster layout, emptied, and a snapshot of its keys."""
    if request.param == "lamed":
        server = request.getfixturevalue("redis_server")
        server.client().flushall()
        store, clients = Store(server.client()), [server.client()]
    else:
        cluster = request.getfixturevalue("redis_cluster")
        store, clients = open_store({"url": cluster.url, "cluster": True}, 86400), [node.client() for node in cluster.nodes]
    store.snapshot = lambda: {key: client.dump(key) for client in clients for key in client.keys("*")}
    yield store
    handlers.use_store(None)


def track(experiment="button", variant="red", event="participate", uuid="u1", namespace=None):
    params = {"experiment": experiment, "variant": variant, "event": event, "uuid": uuid}
    return call(lamed.track, params | ({"namespace": namespace} if namespace else {}))


def seed(experiment: str, variants: dict) -> None:
    """AlephBet's track calls: per variant ``(participants, {goal: conversions})``."""
    for label, (participants, goals) in variants.items():
        for index in range(participants):
            for event in ["participate", *(goal for goal, conversions in goals.items() if index < conversions)]:
                assert track(experiment, label, event, f"{label}-{index}") == (200, {"counted": True})


def analysis(experiment="button", namespace="alephbet") -> dict:
    status, body = call(lamed.all, {"namespace": namespace}, path="/experiments")
    assert status == 200
    (found,) = report.analyse_entries(body[1:], namespace, "the handlers", experiment=experiment).analysis["experiments"]
    return found


def decisions(found: dict) -> dict:
    return {(goal["goal"], row["label"]): row["decision"] for goal in found["goals"] for row in goal["variants"][1:]}


BUTTON_DECLARED = {"button": {"variants": ["control", "red"], "goals": ["signup"]}}


def test_a_declared_experiment_counts_only_its_declared_names(layout):
    handlers.use_store(layout, declared=declarations(BUTTON_DECLARED))
    assert track() == (200, {"counted": True})
    assert track(event="signup") == (200, {"counted": True})
    before = layout.snapshot()
    refusals = {
        "variant": track(variant="!", uuid="u2"),
        "event": track(event="junk1", uuid="u2"),
    }
    assert refusals == {
        "variant": (400, {"error": "parameter 'variant' is not a variant declared for experiment 'button'"}),
        "event": (400, {"error": "parameter 'event' is neither 'participate' nor a goal declared for experiment 'button'"}),
    }
    assert layout.snapshot() == before
    assert track(experiment="other", variant="x", event="anything") == (200, {"counted": True})  # undeclared: open
    assert track(namespace="staging", variant="!", event="junk") == (200, {"counted": True})  # another namespace's button


def test_a_stopped_experiment_counts_nothing_and_its_results_are_frozen(layout):
    handlers.use_store(layout, declared=declarations(BUTTON_DECLARED))
    seed("button", {"control": (3, {"signup": 1}), "red": (3, {"signup": 2})})
    frozen, before = analysis(), layout.snapshot()
    handlers.use_store(layout, declared=declarations({"button": {**BUTTON_DECLARED["button"], "stopped": True}}))
    assert track(uuid="new") == (200, {"counted": False})
    assert track(event="signup", uuid="new") == (200, {"counted": False})
    assert track(variant="!", uuid="new")[0] == 400
    assert layout.snapshot() == before
    stopped = analysis()
    assert stopped["stopped"] is True and frozen["stopped"] is False
    # The same figures, but no days remaining for an experiment that counts nothing more.
    red = stopped["goals"][0]["variants"][1]
    assert red["days_remaining"] is None and red["notes"]["days_remaining"] == "the experiment is stopped"
    assert without_days_remaining({**stopped, "stopped": False}) == without_days_remaining(frozen)


def without_days_remaining(found: dict) -> dict:
    """The figures less each row's ``days_remaining`` and its note."""
    def row_without(row: dict) -> dict:
        notes = {key: value for key, value in row.get("notes", {}).items() if key != "days_remaining"}
        return {key: value for key, value in row.items() if key not in ("days_remaining", "notes")} | {"notes": notes}

    return {**found, "goals": [{**goal, "variants": [row_without(row) for row in goal["variants"]]} for goal in found["goals"]]}


def test_declared_only_refuses_undeclared_experiments_and_other_namespaces(layout):
    handlers.use_store(layout, declared=declarations(BUTTON_DECLARED, declared_only=True, namespace="shop"))
    assert track(namespace="shop") == (200, {"counted": True})
    before = layout.snapshot()
    assert track(namespace="shop", experiment="other") == (
        400, {"error": "parameter 'experiment' names no declared experiment: this backend counts declared experiments only"})  # fmt: skip
    assert track() == (400, {"error": "parameter 'namespace' must be 'shop': this backend counts declared experiments only"})
    assert track(namespace="staging", experiment="other") [0] == 400
    assert layout.snapshot() == before


def test_forty_junk_goals_change_an_undeclared_verdict_but_not_a_declared_one(layout):
    handlers.use_store(layout)
    seed("button", BUTTON)
    assert decisions(analysis()) == {("signup", "red"): "winner"}
    layout.bounds = Bounds(max_goals=JUNK_GOALS + 1)  # the issue's attack, on goals not bounded (max_goals is 20)
    for index in range(JUNK_GOALS):
        assert track(event=f"junk{index}", uuid=f"junk-{index}") == (200, {"counted": True})
    undeclared = analysis()
    assert decisions(undeclared)[("signup", "red")] == "inconclusive"  # the attack on an undeclared experiment
    assert undeclared["declared"] is False and "anyone can add variants and goals" in undeclared["declared_note"]

    # Declared afterwards: the junk Redis already holds leaves the family, and new junk is refused.
    handlers.use_store(layout, declared=declarations(BUTTON_DECLARED))
    declared = analysis()
    assert [goal["goal"] for goal in declared["goals"]] == ["signup"]
    assert decisions(declared) == {("signup", "red"): "winner"}
    assert declared["declared"] is True and "declared_note" not in declared
    before = layout.snapshot()
    for index in range(JUNK_GOALS):
        assert track(event=f"more-junk{index}", uuid=f"more-junk-{index}")[0] == 400
    assert layout.snapshot() == before and analysis() == declared


def test_a_junk_variant_cannot_become_the_control_of_a_declared_experiment(layout):
    handlers.use_store(layout)
    seed("hero", {"blue": (150, {"buy": 15}), "green": (150, {"buy": 30})})
    for index in range(3):
        track("hero", "!", "participate", f"junk-{index}")
    assert analysis("hero")["control"] == "!"  # undeclared: "!" sorts first
    handlers.use_store(layout, declared=declarations({"hero": {"variants": ["blue", "green"], "goals": ["buy"]}}))
    declared = analysis("hero")
    assert declared["control"] == "blue" and declared["srm"] is False
    assert [row["label"] for row in declared["goals"][0]["variants"]] == ["blue", "green"]
    assert track("hero", "!", "participate", "junk-9")[0] == 400


def test_the_declared_weights_and_a_non_unique_goal_reach_the_statistics(layout):
    """A 1:3 experiment split 1:3 raises no sample-ratio warning once declared so (it does under an even
    declaration); a goal declared non-unique, whose events outnumber its participants, leaves the family."""
    handlers.use_store(layout)
    seed("split", {"a": (300, {"buy": 30}), "b": (900, {"buy": 90})})
    for index in range(600):  # two page views per participant of a, with fresh uuids as AlephBet sends them
        assert track("split", "a", "views", f"view-{index}")[1] == {"counted": True}
    goals = ["buy", {"name": "views", "unique": False}]
    handlers.use_store(layout, declared=declarations({"split": {"variants": {"a": 1, "b": 3}, "goals": goals}}))
    weighted = analysis("split")
    assert weighted["srm"] is False and weighted["declared"] is True
    views = next(goal for goal in weighted["goals"] if goal["goal"] == "views")
    assert [row["decision"] for row in views["variants"]] == [None, None] and views["variants"][0]["successes"] == 600
    handlers.use_store(layout, declared=declarations({"split": {"variants": ["a", "b"], "goals": goals}}))
    assert analysis("split")["srm"] is True


def test_results_show_exactly_the_declared_names_zeros_included(layout):
    experiments = {
        "button": {"variants": ["control", "red", "green"], "goals": ["signup", {"name": "views", "unique": False}], "control": "red"},
        "waiting": {"variants": ["a", "b"], "goals": ["buy"]},
    }  # fmt: skip
    handlers.use_store(layout, declared=declarations(experiments))
    seed("button", {"control": (2, {"signup": 1}), "red": (1, {})})
    status, body = call(lamed.all, None, path="/experiments")
    assert status == 200 and body[0] == {"meta": {"scope": None}}
    button, waiting = body[1:]
    assert button == {
        "experiment": "button",
        "goals": [
            {"goal": "signup", "results": [{"label": "control", "successes": 1, "trials": 2},
                                           {"label": "green", "successes": 0, "trials": 0},
                                           {"label": "red", "successes": 0, "trials": 1}]},
            {"goal": "views", "results": [{"label": "control", "successes": 0, "trials": 2},
                                          {"label": "green", "successes": 0, "trials": 0},
                                          {"label": "red", "successes": 0, "trials": 1}], "unique": False},
        ],
        "variants": [{"label": "control", "trials": 2}, {"label": "green", "trials": 0}, {"label": "red", "trials": 1}],
        "declared": {"control": "red", "weights": {"control": 1.0, "red": 1.0, "green": 1.0}, "stopped": False},
    }  # fmt: skip
    assert waiting["experiment"] == "waiting" and waiting["variants"] == [{"label": "a", "trials": 0}, {"label": "b", "trials": 0}]
    assert call(lamed.experiment, {"experiment": "waiting"}, path="/experiment") == (200, waiting)
    status, scoped = call(lamed.all, {"scope": "waiting,nope", "days": "1"}, path="/experiments")
    assert [entry["experiment"] for entry in scoped[1:]] == ["waiting"] and scoped[1]["daily"] == {}
    assert stats.analyse(body, "alephbet", experiment="button")["experiments"][0]["control"] == "red"


def test_daily_counts_of_a_declared_experiment_hold_only_its_declared_names(layout):
    handlers.use_store(layout)
    seed("button", {"control": (2, {"signup": 1, "junk": 1}), "!": (1, {"signup": 1})})
    handlers.use_store(layout, declared=declarations(BUTTON_DECLARED))
    status, entry = call(lamed.experiment, {"experiment": "button", "days": "1"}, path="/experiment")
    assert status == 200
    (day,) = entry["daily"]
    assert entry["daily"][day] == {"participate": {"control": 2}, "signup": {"control": 1}}


# -- the real `lamed serve` over HTTP, and the real CLI ------------------------------------------------


@pytest.mark.parametrize("cluster", [False, True], ids=["lamed", "cluster"])
def test_lamed_serve_and_lamed_results_keep_a_declared_verdict_through_the_attacks(cluster, request, tmp_path):
    """Issue 17's attacks over HTTP on the real `lamed serve` (its config declaring ``button``
    and ``hero``; ``twin`` has the same counts, undeclared), read back by the real CLI."""
    import csv
    import io

    import requests
    from click.testing import CliRunner

    from lamed.cli import cli
    from serve_cli import LamedServe

    if cluster:
        url = request.getfixturevalue("redis_cluster").url
    else:
        server = request.getfixturevalue("redis_server")
        server.client().flushall()
        url = server.url
    settings = {"url": url, "cluster": cluster}
    store = open_store(settings, 86400)
    for experiment in ("button", "twin"):
        for label, (participants, goals) in BUTTON.items():
            for index in range(participants):
                store.track("alephbet", experiment, label, "participate", f"{label}-{index}")
                if index < goals["signup"]:
                    store.track("alephbet", experiment, label, "signup", f"{label}-{index}")
    config = tmp_path / "config.json"
    experiments = {**BUTTON_DECLARED, "hero": {"variants": ["blue", "green"], "goals": ["buy"]}}
    # max_goals raised: the issue's attack on the undeclared twin, whose goals were not bounded
    config.write_text(json.dumps({"redis": settings, "serve": {"use_config_redis": True}, "experiments": experiments, "max_goals": JUNK_GOALS + 1}))
    with LamedServe(tmp_path, env={"LAMED_CONFIG": str(config), "LAMED_API_KEY": "k"}) as running:
        with requests.Session() as session:

            def send(experiment, variant, event, uuid):
                params = {"experiment": experiment, "variant": variant, "event": event, "uuid": uuid}
                response = session.get(f"{running.url}/prod/track", params=params, timeout=10)
                return response.status_code, response.json()

            for index in range(JUNK_GOALS):
                assert send("button", "red", f"junk{index}", f"j{index}") == (
                    400, {"error": "parameter 'event' is neither 'participate' nor a goal declared for experiment 'button'"})  # fmt: skip
                assert send("twin", "red", f"junk{index}", f"j{index}") == (200, {"counted": True})
            for index in range(3):
                assert send("hero", "!", "participate", f"j{index}")[0] == 400
            junk = {"experiment": "button", "variant": "red", "event": "junk", "uuid": "j"}  # as a function URL's 2.0 event
            refused = session.get(f"{running.url}/function-url/", params=junk, timeout=10)
            assert (refused.status_code, refused.json()["error"]) == (400, "parameter 'event' is neither 'participate' nor a goal declared for experiment 'button'")
            assert send("hero", "blue", "participate", "v1") == (200, {"counted": True})

        def lamed_results(*args):
            environment = {"LAMED_CONFIG": None, "LAMED_ENDPOINT": None, "LAMED_API_KEY": None}
            arguments = ["results", "--endpoint", f"{running.url}/prod/experiments", "--api-key", "k", *args]
            result = CliRunner().invoke(cli, arguments, env=environment)
            assert result.exit_code == 0, result.output
            return result.output

        figures = {experiment["experiment"]: experiment for experiment in json.loads(lamed_results("--format", "json"))["experiments"]}
        table = lamed_results()
        rows = list(csv.DictReader(io.StringIO(lamed_results("--format", "csv"))))
    assert decisions(figures["button"]) == {("signup", "red"): "winner"}
    assert figures["button"]["declared"] is True and figures["hero"]["control"] == "blue"
    assert [goal["goal"] for goal in figures["hero"]["goals"]] == ["buy"]
    assert decisions(figures["twin"])[("signup", "red")] == "inconclusive" and len(figures["twin"]["goals"]) == 1 + JUNK_GOALS
    assert "note: not declared in the config: anyone can add variants and goals" in table.split("\ntwin  (")[1]
    assert "note:" not in table.split("\nbutton  (")[1].split("\nhero  (")[0]
    assert {(row["experiment"], row["declared"]) for row in rows} == {("button", "true"), ("hero", "true"), ("twin", "false")}


def test_the_table_and_both_dashboards_mark_a_stopped_experiment_and_an_undeclared_one(redis_server, tmp_path):
    import requests
    from click.testing import CliRunner

    from lamed.cli import cli
    from lamed.serve import make_server

    redis_server.client().flushall()
    declared = declarations({"button": {**BUTTON_DECLARED["button"], "stopped": True}})
    with make_server("127.0.0.1", 0, "k", Store(redis_server.client()), declared=declared) as running:
        running.start()
        for experiment in ("button", "open"):
            assert track(experiment, "red") == (200, {"counted": experiment == "open"})
        output = tmp_path / "dashboard.html"
        arguments = ["dashboard", "--endpoint", f"{running.url}/prod/experiments", "--api-key", "k", "--output", str(output), "--no-open"]
        result = CliRunner().invoke(cli, arguments, env={"LAMED_CONFIG": None, "LAMED_ENDPOINT": None, "LAMED_API_KEY": None})
        assert result.exit_code == 0, result.output
        live = requests.get(f"{running.url}/prod/dashboard", headers={"x-api-key": "k"}, timeout=10).text
        table = CliRunner().invoke(cli, ["results", *arguments[1:5]], env={"LAMED_CONFIG": None, "LAMED_ENDPOINT": None}).output
    assert "  STOPPED: stopped (declared so in the config): /track counts nothing more for it, so these counts are frozen" in table
    handlers.use_store(None)
    for page in (output.read_text(), live):
        button, undeclared = page.split('data-experiment="button"')[1].split('data-experiment="open"')
        assert '<h2>button <span class="tag">stopped</span></h2>' in button
        assert "<strong>Note:</strong> stopped (declared so in the config): /track counts nothing more" in button
        assert "<strong>Note:</strong> not declared in the config: anyone can add variants and goals" in undeclared
        assert "stopped" not in undeclared


def test_deleting_a_declared_experiment_nothing_was_counted_for_is_no_error_on_the_live_page(redis_server, chromium):
    """Its card shows zeros and a Delete button; DELETE /delete keeps answering 404 (nothing is
    stored), which the page reports as nothing to delete, not as an error."""
    import requests

    from lamed.serve import make_server

    redis_server.client().flushall()
    with make_server("127.0.0.1", 0, "k", Store(redis_server.client()), declared=declarations(BUTTON_DECLARED)) as running:
        running.start()
        gone = requests.delete(f"{running.url}/delete", params={"experiment": "button"}, headers={"x-api-key": "k"}, timeout=10)
        assert (gone.status_code, gone.json()) == (404, {"error": "no experiment 'button' in namespace 'alephbet'"})
        context = chromium.new_context()
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{running.url}/")
        page.locator("#key").fill("k")
        page.get_by_role("button", name="Show results").click()
        card = page.locator('section.card[data-experiment="button"]')
        with page.expect_response(lambda response: "/delete?" in response.url) as deleted:
            card.get_by_role("button", name="Delete").click()
        assert deleted.value.status == 404
        page.locator("#error:not([hidden]), #notice:not([hidden])").wait_for()  # whichever the page shows
        notice = page.get_by_role("status")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        assert notice.inner_text() == (
            "Nothing is stored for experiment \u201cbutton\u201d in namespace \u201calephbet\u201d: there was nothing to delete "
            "(a declared experiment stays listed, with zeros, while the config declares it)."
        )
        assert card.count() == 1
        page.get_by_role("button", name="Refresh").click()
        notice.wait_for(state="hidden")
        context.close()
    handlers.use_store(None)


def test_the_documented_example_is_a_valid_config():
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    example = re.search(r"```json\n(.*?)```", page[page.index("## Declared experiments") :], re.S).group(1)
    config = config_of(json.loads(example))
    assert config.declared_only and config.experiments["button colour"]["variants"] == {"control": 1.0, "red": 1.0, "green": 2.0}
    assert config.experiments["button colour"]["goals"] == {"signup": True, "page views": False}
