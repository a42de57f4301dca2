"""How many participants lamed's always-valid test needs: ``lamed plan`` before an experiment
(participants per variant for 80% power), and, for an undecided comparison, the participants
and days still needed (``needed_per_variant``, ``days_remaining``).

Everything comes from the mixture boundary of :mod:`lamed.mixture` on the pooled z of two equal
arms. With Z_n the z at n participants a side, S_n = Z_n sqrt(n) is about a Brownian motion
with drift mu = (p_v - p_c) / sqrt(2 p (1 - p)) (p the pooled rate) and variance k^2 =
(p_v q_v + p_c q_c) / (2 p q) per participant; a decision is S crossing g(n) = z_boundary(r_n)
sqrt(n), concave in n. The chance of crossing by n is that of the tangent to g at n, a line
a + c t (which lies above g, so it is a slight underestimate), crossed by a Brownian motion
with drift: Phi((mu' T - a') / sqrt T) + exp(2 a' mu') Phi(-(mu' T + a') / sqrt T), with
mu' = (mu - c) / k, a' = a / k and T = n (Siegmund 1986). docs/statistics.md compares it with
simulation.
"""

import math
from statistics import NormalDist

from lamed.mixture import ALPHA, MIN_TRIALS, information, log_mixture_likelihood_ratio, z_boundary

POWER = 0.8
LARGEST = 10**10  # participants a side beyond which a plan is not worth a number
_NORMAL = NormalDist()


class Unplannable(ValueError):
    """No plan exists for these figures; the message says why, for people."""


def chance_to_decide(control_rate: float, uplift: float, per_arm: float, comparisons: int = 1) -> float:
    """The chance that the always-valid test has decided by ``per_arm`` participants a side when
    the variant's rate is control_rate (1 + uplift), at level ALPHA / comparisons (module doc)."""
    rate = control_rate * (1 + uplift)
    pooled = (control_rate + rate) / 2
    spread = math.sqrt(2 * pooled * (1 - pooled))
    k = math.sqrt(rate * (1 - rate) + control_rate * (1 - control_rate)) / spread
    level = ALPHA / comparisons

    def boundary(n: float) -> float:
        return z_boundary(information(pooled, n, n), level) * math.sqrt(n)

    step = per_arm * 1e-4
    slope = (boundary(per_arm + step) - boundary(per_arm - step)) / (2 * step)
    intercept = (boundary(per_arm) - slope * per_arm) / k
    drift = (abs(rate - control_rate) / spread - slope) / k
    root = math.sqrt(per_arm)
    direct = _NORMAL.cdf((drift * per_arm - intercept) / root)
    return min(1.0, direct + _reflected(2 * intercept * drift, (drift * per_arm + intercept) / root))


def _reflected(log_factor: float, x: float) -> float:
    """exp(log_factor) Phi(-x), in logs: the factor can overflow where Phi(-x) underflows."""
    tail = math.erfc(x / math.sqrt(2)) / 2
    if tail > 0:
        return math.exp(log_factor + math.log(tail))
    log_tail = -x * x / 2 - math.log(x * math.sqrt(2 * math.pi))  # Mills' ratio, x large
    return math.exp(log_factor + log_tail)


def _checked(control_rate: float, uplift: float) -> None:
    if not 0 < control_rate < 1:
        raise Unplannable(f"a baseline rate of {control_rate:.4g} is not between 0% and 100%")
    if uplift == 0:
        raise Unplannable("an effect of 0 can never be detected")
    if not 0 <= control_rate * (1 + uplift) <= 1:
        raise Unplannable(f"a {control_rate:.2%} baseline with a {uplift:+.2%} effect is not a rate between 0% and 100%")


def participants_per_variant(control_rate: float, uplift: float, comparisons: int = 1, power: float = POWER) -> int:
    """The fewest participants a side with at least ``power`` chance to decide (module doc),
    and at least MIN_TRIALS, below which nothing is decided: bisection, the chance growing
    with n. :class:`Unplannable` for an effect of 0, rates outside 0..1, or more than LARGEST
    a side."""
    _checked(control_rate, uplift)
    if chance_to_decide(control_rate, uplift, LARGEST, comparisons) < power:
        raise Unplannable(f"more than {LARGEST:,} participants per variant")
    low, high = 1, LARGEST
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if chance_to_decide(control_rate, uplift, middle, comparisons) >= power else (middle, high)
    return max(high, MIN_TRIALS)


def growth_to_decide(z: float, info: float, comparisons: int = 1) -> float:
    """The factor by which both arms must grow for an observed effect that holds (z growing as
    sqrt(growth), r as growth) to reach the boundary at level ALPHA / comparisons: the
    smallest such factor >= 1, by bisection."""
    if z == 0:
        raise Unplannable("no difference observed yet")
    threshold = math.log(comparisons / ALPHA)

    def decided(growth: float) -> bool:
        return log_mixture_likelihood_ratio(z * math.sqrt(growth), info * growth) >= threshold

    high = 2.0
    while not decided(high):
        high *= 2
        if high > 1e12:
            raise Unplannable("the observed difference is too small to ever decide on")
    low = 1.0
    while high - low > 1e-9 * high:
        middle = (low + high) / 2
        low, high = (low, middle) if decided(middle) else (middle, high)
    return high


def percentage(text: str, option: str) -> float:
    """``"10%"`` as 0.1; :class:`Unplannable` naming ``option`` for anything else."""
    number = text.strip().removesuffix("%")
    try:
        value = float(number) / 100
    except ValueError:
        value = math.nan
    if not text.strip().endswith("%") or not math.isfinite(value):
        raise Unplannable(f"{option} {text!r} is not a percentage: write it like 10%")
    return value


def effect(text: str, option: str = "--mde") -> float:
    """A relative effect such as ``"5%"`` or ``"-20%"``: a percentage, not 0, above -100%."""
    value = percentage(text, option)
    if value == 0 or value < -1:
        raise Unplannable(f"{option} {text!r} is no effect to size for: give a relative change such as 5% or -20%")
    return value


def plan_text(baseline: float, uplift: float, variants: int = 2, daily: int | None = None) -> str:
    """What ``lamed plan`` prints: participants per variant (and days at ``daily`` participants
    a day over all variants) for POWER to decide on a relative ``uplift`` over ``baseline``,
    each variant against the control at level ALPHA / (variants - 1)."""
    comparisons = variants - 1
    per_variant = participants_per_variant(baseline, uplift, comparisons)
    lines = [
        f"baseline {baseline:.2%}, effect {uplift * 100:+.4g}% ({baseline:.2%} -> {baseline * (1 + uplift):.2%}), "
        f"{variants} variants ({comparisons} comparison{'s' if comparisons > 1 else ''} with the control)",
        f"{per_variant:,} participants per variant ({per_variant * variants:,} in all) for an {POWER:.0%} chance "
        f"that lamed's always-valid test decides (family-wise error {ALPHA:.0%}, however often you look)",
    ]
    if daily is not None:
        lines.append(f"{math.ceil(per_variant * variants / daily):,} days at {daily:,} participants a day")
    return "\n".join(lines)
