"""lamed.planner: participants per variant for 80% power against a seeded simulation of
lamed's own decisions, the participants still needed, and `lamed plan`."""

import math

import pytest
from click.testing import CliRunner

from lamed import planner, stats
from lamed.cli import cli
from sequential_simulation import decision_times, quantile


@pytest.mark.parametrize("control_rate, uplift, seed", [(0.1, 0.5, 1), (0.3, -0.3, 2)])
def test_the_planned_size_is_where_80_percent_of_simulated_tests_have_decided(control_rate, uplift, seed):
    """Looked at 100 times up to twice the plan: 80% of the runs decide within 10% of it (the
    full-size comparison, 2,000 runs per scenario, is in benchmarks/stats.py)."""
    planned = planner.participants_per_variant(control_rate, uplift)
    wanted = "winner" if uplift > 0 else "loser"
    times = decision_times([control_rate, control_rate * (1 + uplift)], 600, 100, 2 * planned, wanted, seed=seed)
    assert quantile(times, 0.8) == pytest.approx(planned, rel=0.1)


def test_more_comparisons_need_more_participants_and_the_chance_grows_with_them():
    one, three = (planner.participants_per_variant(0.1, 0.1, comparisons) for comparisons in (1, 3))
    assert 20_000 < one < three < 1.5 * one
    chances = [planner.chance_to_decide(0.1, 0.1, n) for n in (1000, 10_000, one, 100_000)]
    assert chances == sorted(chances) and chances[2] == pytest.approx(0.8, abs=0.001)


def test_a_broken_variant_needs_a_few_hundred_and_no_plan_goes_below_the_floor():
    assert 100 < planner.participants_per_variant(0.1, -1.0) < 500
    assert planner.participants_per_variant(0.01, 50.0) == stats.MIN_TRIALS  # 1% -> 51%: decided at the floor


def test_an_observed_effect_is_sized_until_its_statistic_reaches_the_boundary():
    counts = (1030, 10_000, 1000, 10_000)
    growth = planner.growth_to_decide(*stats._statistic(*counts))
    grown = [round(n * growth) for n in counts]
    assert stats.always_valid_p_value(*grown) == pytest.approx(stats.ALPHA, rel=0.02)  # counts rounded
    with pytest.raises(planner.Unplannable, match="no difference observed yet"):
        planner.growth_to_decide(0.0, 1.0)


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--baseline", "10%", "--mde", "10%", "--daily", "2000"],
         ["baseline 10.00%, effect +10% (10.00% -> 11.00%), 2 variants (1 comparison with the control)",
          f"{planner.participants_per_variant(0.1, 0.1):,} participants per variant", "27 days at 2,000 participants a day"]),
        (["--baseline", "2.5%", "--mde", "-20%", "--variants", "3"], ["3 variants (2 comparisons with the control)"]),
    ],
)  # fmt: skip
def test_lamed_plan_prints_participants_and_days(arguments, expected):
    result = CliRunner().invoke(cli, ["plan", *arguments])
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.output


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--baseline", "10", "--mde", "10%"], "--baseline '10' is not a percentage: write it like 10%"),
        (["--baseline", "0%", "--mde", "10%"], "a baseline rate of 0 is not between 0% and 100%"),
        (["--baseline", "10%", "--mde", "0%"], "--mde '0%' is no effect to size for: give a relative change such as 5% or -20%"),
        (["--baseline", "10%", "--mde", "-150%"], "--mde '-150%' is no effect to size for: give a relative change such as 5% or -20%"),
        (["--baseline", "60%", "--mde", "80%"], "a 60.00% baseline with a +80.00% effect is not a rate between 0% and 100%"),
        (["--baseline", "10%", "--mde", "0.0001%"], f"more than {planner.LARGEST:,} participants per variant"),
        (["--baseline", "10%", "--mde", "nan%"], "--mde 'nan%' is not a percentage: write it like 10%"),
    ],
)
def test_lamed_plan_refuses_bad_input_in_one_line(arguments, message):
    result = CliRunner().invoke(cli, ["plan", *arguments])
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")


def test_lamed_plan_options_are_checked_by_click():
    result = CliRunner().invoke(cli, ["plan", "--baseline", "10%", "--mde", "5%", "--variants", "1"])
    assert result.exit_code == 2 and "--variants" in result.output
    assert math.isfinite(planner.percentage("12.5%", "--mde")) and planner.percentage("12.5%", "--mde") == 0.125
