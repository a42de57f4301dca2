"""Issue 17, item 4: names safe to print. /track refuses control characters (Unicode category C)
with 400, and every output escapes what Redis already holds: names written as the original Lamed
writes them (its keys, straight into Redis) show in the table, the CSV and both dashboards without
a control character, and CSV cells that a spreadsheet would read as a formula are neutralised."""

import csv
import io
import json
import re
import unicodedata

import pytest
import requests
from click.testing import CliRunner

import lamed
from handler_calls import call
from lamed.cli import cli
from lamed.names import has_control, printable
from results_api import API_KEY, server  # noqa: F401 (server is a fixture)

ISOLATED = {"LAMED_API_KEY": None, "LAMED_ENDPOINT": None, "LAMED_CONFIG": None}
CONTROLS = ["\x1b[2J", "\x07", "\n", "\r", "\t", "\x00", "\x85", "\u202e", "\u200b", "\ue000"]
# A terminal's window title set and its screen cleared, and a forged table line.
EXPERIMENT = "\x1b]0;owned\x07checkout\x1b[2J"
GOAL = "buy\n    red beats control, uplift +99%"
# What a stranger could make a spreadsheet run (OWASP's CSV injection examples).
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def has_no_control(text: str) -> bool:
    """No character of category C but the newlines that separate lines."""
    return not any(unicodedata.category(character)[0] == "C" for character in text.replace("\n", ""))


@pytest.mark.parametrize("name", ["namespace", "experiment", "variant", "event"])
@pytest.mark.parametrize("control", CONTROLS)
def test_track_refuses_a_name_with_a_control_character(handler_store, redis_client, name, control):
    params = {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u", name: f"x{control}y"}
    assert call(lamed.track, params) == (400, {"error": f"parameter '{name}' must not contain control characters (Unicode category C)"})
    assert redis_client.dbsize() == 0


def test_track_accepts_spaces_accents_and_symbols(handler_store):
    for name in ("big red", "é e\u0301", "non\u00a0breaking", "漢字", "🙂", "=1+1", "'quoted'"):
        assert call(lamed.track, {"experiment": name, "variant": name, "event": name, "uuid": "u"}) == (200, {"counted": True})


def test_printable_escapes_each_control_character_and_nothing_else():
    assert printable("a\x1b[2Jb\n\u202e é\u00a0x") == "a\\x1b[2Jb\\n\\u202e é\u00a0x"
    assert not has_control("é\u00a0 x") and all(has_control(f"a{control}") for control in CONTROLS)
    assert all(has_no_control(printable(f"a{control}b")) for control in CONTROLS)


@pytest.fixture
def seeded(server, redis_client):
    """Control characters and formulas in names, written as the original Lamed writes them."""

    def count(experiment, event, variant, n):
        key = f"alephbet:counters:{experiment}:{event}:{variant}"
        redis_client.set(key, n)
        redis_client.sadd("alephbet:experiments", experiment)
        redis_client.sadd("alephbet:counter_keys", key)
        redis_client.sadd(f"alephbet:{experiment}:counter_keys", key)

    for index, variant in enumerate(["control", "red\x1b[31m", *FORMULAS]):
        count(EXPERIMENT, "participate", variant, 300)
        count(EXPERIMENT, GOAL, variant, 30 + 10 * index)
    return f"{server.url}/prod/experiments"


def results(url, fmt):
    result = CliRunner().invoke(cli, ["results", "--endpoint", url, "--api-key", API_KEY, "--format", fmt], env=ISOLATED)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_table_and_its_verdict_lines_hold_no_control_character(seeded):
    table = results(seeded, "table")
    assert has_no_control(table)
    assert "\\x1b]0;owned\\x07checkout\\x1b[2J  (control: control" in table
    assert "  goal: buy\\n    red beats control, uplift +99%" in table
    verdicts = [line for line in table.splitlines() if "beats" in line or "no clear difference" in line]
    assert verdicts and any("red\\x1b[31m" in line for line in verdicts)
    rows = [line for line in table.splitlines() if line.startswith("    red\\x1b[31m ")]
    control = next(line for line in table.splitlines() if line.startswith("    control "))
    assert len(rows) == 1 and rows[0].index(" 300 ") == control.index(" 300 ")  # aligned as escaped


def test_csv_neutralises_formulas_and_escapes_control_characters(seeded):
    text = results(seeded, "csv")
    assert has_no_control(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    variants = {row["variant"] for row in rows}
    assert variants == {"control", "red\\x1b[31m", *("'" + printable(formula) for formula in FORMULAS)}
    for row in rows:
        assert row["experiment"] == "\\x1b]0;owned\\x07checkout\\x1b[2J" and row["goal"] == "buy\\n    red beats control, uplift +99%"
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            assert not cell.startswith("-") or re.fullmatch(r"-[0-9.e-]+", cell), (column, cell)  # a negative number
    assert any(row["verdict"].startswith("'") for row in rows if row["variant"].startswith("'="))


def test_the_json_keeps_the_names_as_they_are(seeded):
    body = json.loads(results(seeded, "json"))
    assert body["experiments"][0]["experiment"] == EXPERIMENT


def test_both_dashboards_escape_the_names_and_delete_sends_them_back_exactly(seeded, server, tmp_path, redis_client):
    output = tmp_path / "page.html"
    args = ["dashboard", "--endpoint", seeded, "--api-key", API_KEY, "--output", str(output), "--no-open"]
    result = CliRunner().invoke(cli, args, env=ISOLATED)
    assert result.exit_code == 0, result.output
    page = output.read_text()
    live = requests.get(f"{server.url}/prod/dashboard", headers={"x-api-key": API_KEY}, timeout=5)
    assert live.status_code == 200
    for html in (page, live.text):
        assert has_no_control(html)
        assert "\\x1b]0;owned\\x07checkout\\x1b[2J" in html and "red\\x1b[31m" in html
    sent_back = re.search(r"data-delete='([^']*)'", live.text).group(1)
    assert json.loads(sent_back.replace("&#34;", '"').replace("&amp;", "&")) == EXPERIMENT
    assert call(lamed.delete, {"experiment": EXPERIMENT}, method="DELETE")[0] == 200
    assert redis_client.dbsize() == 0
