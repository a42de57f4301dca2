"""The statistics of A/B results: rates, intervals, tests, chance to beat control, the
always-valid sample-ratio check, the always-valid decisions (a mixture SPRT on the score
statistic of the rate ratio per comparison, Holm over each experiment) and what an undecided
comparison still needs.

Pure Python (``math``, ``statistics`` and lamed's own modules), so it runs wherever lamed runs.
:func:`analyse` turns the entries of ``GET /experiments`` into the figures of
``lamed results --format json``; the functions above it compute one figure each and
raise :class:`Undefined`, whose message says why, where a figure does not exist.
"""

import math
from statistics import NormalDist

from lamed import days, planner
from lamed.config import PARTICIPATE
from lamed.mixture import ALPHA, MIN_TRIALS, information, log_mixture_likelihood_ratio, z_boundary

Z_95 = NormalDist().inv_cdf(0.975)
SRM_THRESHOLD = 0.001
CONTROL_NAME = "control"
COMPARISONS = ("uplift", "uplift_ci", "p_value", "chance_to_beat_control")
SEQUENTIAL = ("sequential_p_value", "sequential_uplift_ci", "decision")
WAITING = ("needed_per_variant", "days_remaining")
DECISIONS = ("winner", "loser", "inconclusive", "insufficient_data")


class NotLamedShape(ValueError):
    """The entries are not Lamed's results list; the message says what is missing where."""


class Undefined(ValueError):
    """A figure does not exist for these counts; the message is the reason, for people."""


def _check(successes: int, trials: int, side: str = "") -> float:
    """The rate successes / trials, or :class:`Undefined` with the reason it has none."""
    who = f"the {side} has " if side else ""
    if trials < 0 or successes < 0:
        raise Undefined(f"{who}a negative count ({successes} successes, {trials} participants)")
    if trials == 0:
        raise Undefined(f"{who}no participants yet")
    if successes > trials:
        raise Undefined(f"{who}more successes ({successes}) than participants ({trials})")
    return successes / trials


# -- one variant ----------------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the rate successes / trials (95% by default)."""
    rate = _check(successes, trials)
    z2n = z * z / trials
    centre = (rate + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(rate * (1 - rate) / trials + z2n / (4 * trials))
    low = 0.0 if successes == 0 else centre - half  # exact ends where rounding would miss them
    high = 1.0 if successes == trials else centre + half
    return low, high


# -- a variant against the control -------------------------------------------------------------


def uplift(s_v: int, n_v: int, s_c: int, n_c: int) -> float:
    """Relative uplift of the variant's rate over the control's: rate / control rate - 1."""
    rate, control_rate = _check(s_v, n_v, "variant"), _check(s_c, n_c, "control")
    if control_rate == 0:
        raise Undefined("the control has a 0% rate")
    return rate / control_rate - 1


def uplift_interval(s_v: int, n_v: int, s_c: int, n_c: int, z: float = Z_95) -> tuple[float, float]:
    """Katz's log interval of the relative uplift (95% by default): the delta method on
    log(rate ratio), whose variance is 1/s_v - 1/n_v + 1/s_c - 1/n_c, mapped back by exp - 1."""
    ratio = uplift(s_v, n_v, s_c, n_c) + 1
    if s_v == 0:
        raise Undefined("the variant has no successes: a log interval needs at least one on each side")
    variance = 1 / s_v - 1 / n_v + 1 / s_c - 1 / n_c
    if variance <= 0:
        raise Undefined("every participant succeeded in both variants: there is no spread to build an interval on")
    half = z * math.sqrt(variance)
    log_ratio = math.log(ratio)
    return math.expm1(log_ratio - half), math.expm1(log_ratio + half)


def two_proportion_p_value(s_v: int, n_v: int, s_c: int, n_c: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of the variant against the control."""
    rate, control_rate = _check(s_v, n_v, "variant"), _check(s_c, n_c, "control")
    pooled = (s_v + s_c) / (n_v + n_c)
    if pooled == 0:
        raise Undefined("no conversions in either variant")
    if pooled == 1:
        raise Undefined("every participant converted in both variants")
    z = (rate - control_rate) / math.sqrt(pooled * (1 - pooled) * (1 / n_v + 1 / n_c))
    return math.erfc(abs(z) / math.sqrt(2))


def chance_to_beat(s_v: int, n_v: int, s_c: int, n_c: int) -> float:
    """P(p_variant > p_control) under Beta(1 + s, 1 + n - s) posteriors (uniform priors).

    P = integral of f_narrow(x) * CDF_wide(x) (or its complement), where the narrow
    posterior is the one with the smaller standard deviation: its density is smooth
    over its own mean +- 20 sd, and the wider posterior's CDF varies slowly there, so
    composite Gauss-Legendre quadrature converges to ~1e-9 whatever the counts.
    """
    _check(s_v, n_v, "variant")
    _check(s_c, n_c, "control")
    variant, control = _Beta(1 + s_v, 1 + n_v - s_v), _Beta(1 + s_c, 1 + n_c - s_c)
    if variant.sd <= control.sd:  # P = E_variant[CDF_control(X)]
        value = _expected_cdf(variant, control)
    else:  # P = E_control[1 - CDF_variant(X)]
        value = 1 - _expected_cdf(control, variant)
    return min(1.0, max(0.0, value))


class _Beta:
    """A Beta(a, b) posterior, a and b >= 1: density, CDF, and where its mass is.

    Both rest on log(x^a (1-x)^b / B(a, b)), written around the mean p = a / (a + b) as
    a log(x/p) + b log((1-x)/(1-p)) + log(p^a (1-p)^b / B(a, b)), the last term by
    Stirling's series: no large terms cancel, so it keeps full precision at 10^9 trials
    (lgamma(a) + lgamma(b) - lgamma(a + b) would lose 8 digits there).
    """

    SUPPORT_SDS = 20

    def __init__(self, a: int, b: int):
        self.a, self.b = a, b
        n = a + b
        self.mean_complement = 1 - a / n
        self.mean = 1 - self.mean_complement  # exact complements: mean + complement == 1
        self.sd = math.sqrt(a * b / (n * n * (n + 1)))
        self.log_front_at_mean = 0.5 * math.log(a * b / (2 * math.pi * n)) - _stirling(a) - _stirling(b) + _stirling(n)

    def support(self) -> tuple[float, float]:
        reach = self.SUPPORT_SDS * self.sd
        return max(0.0, self.mean - reach), min(1.0, self.mean + reach)

    def _log_front(self, x: float) -> float:
        """log(x^a (1-x)^b / B(a, b)), for 0 < x < 1."""
        offset = x - self.mean
        return (
            self.a * _log_ratio(x, self.mean, offset)
            + self.b * _log_ratio(1 - x, self.mean_complement, -offset)
            + self.log_front_at_mean
        )

    def pdf(self, x: float) -> float:
        """The density at 0 < x < 1 (quadrature nodes never fall on the ends)."""
        return math.exp(self._log_front(x) - math.log(x) - math.log1p(-x))

    def cdf(self, x: float) -> float:
        """The regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
        if x <= 0:
            return 0.0
        if x >= 1:
            return 1.0
        a, b = self.a, self.b
        front = math.exp(self._log_front(x))
        if x < (a + 1) / (a + b + 2):
            return front * _beta_fraction(a, b, x) / a
        return 1 - front * _beta_fraction(b, a, 1 - x) / b


def _log_ratio(y: float, z: float, difference: float) -> float:
    """log(y / z), given y - z computed exactly: full precision also where y is close to z."""
    return math.log1p(difference / z) if abs(difference) <= 0.5 * z else math.log(y / z)


def _stirling(x: float) -> float:
    """lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2): directly for small x, else its series."""
    if x < 10:
        return math.lgamma(x) - ((x - 0.5) * math.log(x) - x + 0.5 * math.log(2 * math.pi))
    inverse_square = 1 / (x * x)
    series = 1 / 1260 - inverse_square * (1 / 1680 - inverse_square / 1188)
    return (1 / 12 - inverse_square * (1 / 360 - inverse_square * series)) / x


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta, converging fast for x < (a+1)/(a+b+2)
    (modified Lentz, both half-steps of each term written out: this loop is most of
    :func:`analyse`'s time)."""
    tiny, epsilon = 1e-300, 1e-15
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, 100_000):
        twice = 2 * m
        numerator = m * (b - m) * x / ((a + twice - 1) * (a + twice))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + numerator / c
        c = c if abs(c) > tiny else tiny
        value *= c * d
        numerator = -(a + m) * (a + b + m) * x / ((a + twice) * (a + twice + 1))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + numerator / c
        c = c if abs(c) > tiny else tiny
        step = c * d
        value *= step
        if abs(step - 1) < epsilon:
            break
    return value


def _gauss_legendre(order: int) -> list[tuple[float, float]]:
    """Nodes and weights of Gauss-Legendre quadrature on [-1, 1], by Newton's method."""
    rule = []
    for i in range(1, order + 1):
        x = math.cos(math.pi * (i - 0.25) / (order + 0.5))
        for _ in range(100):
            p0, p1 = 1.0, x
            for k in range(2, order + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            derivative = order * (x * p1 - p0) / (x * x - 1)
            step = p1 / derivative
            x -= step
            if abs(step) < 1e-16:
                break
        rule.append((x, 2 / ((1 - x * x) * derivative * derivative)))
    return rule


def _composite_rule(order: int, panels: int) -> list[tuple[float, float]]:
    """Nodes in increasing order on [0, 1] and weights (summing to 1) of composite
    Gauss-Legendre quadrature: ``panels`` panels of ``order`` nodes."""
    rule = sorted(_gauss_legendre(order))
    return [
        ((panel + (1 + node) / 2) / panels, weight / (2 * panels)) for panel in range(panels) for node, weight in rule
    ]


_NODES = _composite_rule(12, 12)
_STEP_RULE = _gauss_legendre(5)
NEGLIGIBLE = 1e-17


def _expected_cdf(narrow: "_Beta", wide: "_Beta") -> float:
    """E[CDF_wide(X)] for X ~ narrow: composite 12 x 12-point Gauss-Legendre over the narrow
    posterior's mean +- 20 sd, skipping the nodes where the narrow density is below
    NEGLIGIBLE (a unimodal density: its two tails, worth less than NEGLIGIBLE in all).
    CDF_wide comes from its continued fraction at the first node kept, then from one node
    to the next by 5-point Gauss-Legendre of the wide density over the gap (nodes are at
    most 0.42 sd apart, where that rule is accurate to ~1e-14): one continued fraction per
    call, not one per node."""
    low, high = narrow.support()
    width = high - low
    total, cdf, previous = 0.0, 0.0, None
    for position, weight in _NODES:
        x = low + position * width
        density = narrow.pdf(x)
        if density * width <= NEGLIGIBLE:  # the weights sum to 1: the node adds less than this
            if previous is None:
                continue  # the lower tail: the mass is still to come
            break  # the upper tail: the rest is negligible too
        cdf = wide.cdf(x) if previous is None else cdf + _integral(wide.pdf, previous, x)
        previous = x
        total += weight * density * min(cdf, 1.0)
    return total * width


def _integral(function, low: float, high: float) -> float:
    """5-point Gauss-Legendre quadrature of ``function`` over the short interval [low, high]."""
    middle, half = (low + high) / 2, (high - low) / 2
    return half * sum(weight * function(middle + node * half) for node, weight in _STEP_RULE)


# -- sample ratio mismatch ---------------------------------------------------------------

# The Dirichlet prior of the split under mismatch: its mean the expected split, its
# concentration SRM_CONCENTRATION (a share's prior sd is about sqrt(w (1 - w) / 1000), 1.6
# points at an even split): sensitive to the few-point mismatches an assignment bug makes.
SRM_CONCENTRATION = 1000


def srm_p_value(trials: list[int], weights: list[float] | None = None) -> float:
    """Always-valid p-value of the participants per variant against the expected split
    (``weights``, normalised; an even split without them): 1 / the Bayes factor of a
    Dirichlet-multinomial mixture against the multinomial of the expected split (Lindon and
    Malek 2022). That factor is a test martingale as participants arrive, so P(p <= alpha at
    any look) <= alpha, exactly, however often anyone looks."""
    if any(n < 0 for n in trials):
        raise Undefined("a variant has a negative number of participants")
    total = sum(trials)
    if total == 0:
        raise Undefined("no participants yet")
    if len(trials) < 2:
        raise Undefined("only one variant: there is no split to check")
    weights = [1.0] * len(trials) if weights is None else weights
    if len(weights) != len(trials) or not all(w > 0 for w in weights):
        raise Undefined("the declared weights do not give every variant a share above 0")
    shares = [w / sum(weights) for w in weights]
    prior = [SRM_CONCENTRATION * share for share in shares]
    log_factor = math.lgamma(SRM_CONCENTRATION) - math.lgamma(SRM_CONCENTRATION + total)
    for n, a, share in zip(trials, prior, shares):
        log_factor += math.lgamma(a + n) - math.lgamma(a) - n * math.log(share)
    return min(1.0, math.exp(-log_factor))


def _srm(entry: dict, labels: list[str], weights: list[float] | None) -> dict:
    """``srm_p_value`` (the smallest over the days of the daily counts, each day's cumulative
    participants: an always-valid p-value stays one at its running minimum) and ``srm``, or
    ``srm_note``."""
    totals = {(PARTICIPATE, label): n for label, n in participants(entry).items()}
    looks = [[counts[PARTICIPATE, label] for label in labels] for _, counts in days.cumulative(totals, _daily(entry))]
    looks = looks or [[totals[PARTICIPATE, label] for label in labels]]
    try:
        p = srm_p_value(looks[-1], weights)
    except Undefined as reason:
        return {"srm_p_value": None, "srm": False, "srm_note": str(reason)}
    for look in looks[:-1]:
        if sum(look):
            p = min(p, srm_p_value(look, weights))
    return {"srm_p_value": p, "srm": p < SRM_THRESHOLD}


def _daily(entry: dict) -> dict:
    daily = entry.get("daily")
    return daily if isinstance(daily, dict) else {}


# -- always-valid inference: a mixture SPRT on the score statistic of the rate ratio -------------


def _checked_pair(s_v: int, n_v: int, s_c: int, n_c: int) -> tuple[float, float]:
    """Both rates, or :class:`Undefined` where the pooled rate is 0 or 1 (no spread to test on)."""
    rates = _check(s_v, n_v, "variant"), _check(s_c, n_c, "control")
    if s_v + s_c == 0:
        raise Undefined("no conversions in either variant")
    if s_v + s_c == n_v + n_c:
        raise Undefined("every participant converted in both variants")
    return rates


def restricted_rates(s_v: int, n_v: int, s_c: int, n_c: int, ratio: float) -> tuple[float, float]:
    """The maximum-likelihood rates of variant and control under rate / control rate = ``ratio``
    (Miettinen and Nurminen 1985): the control's is the root in [0, 1] of a quadratic, written
    2c / (-b + sqrt(b^2 - 4ac)) so that nothing cancels; at ratio 1 both are the pooled rate."""
    a = (n_v + n_c) * ratio
    b = -(ratio * (n_v + s_c) + s_v + n_c)
    c = s_v + s_c
    control = 2 * c / (-b + math.sqrt(max(0.0, b * b - 4 * a * c)))
    return min(1.0, ratio * control), control


def score_statistic(s_v: int, n_v: int, s_c: int, n_c: int, null: float = 0.0) -> float:
    """The score statistic z of log(rate / control rate) = ``null`` (Farrington and Manning 1990):
    the difference rate - e^null control rate over its standard error at the restricted rates
    above; at null 0, the pooled two-proportion z. It exists whatever the counts, 0 and 100%
    included (once checked), and falls as the null rises."""
    ratio = math.exp(null)
    p_v, p_c = restricted_rates(s_v, n_v, s_c, n_c, ratio)
    variance = p_v * (1 - p_v) / n_v + ratio * ratio * p_c * (1 - p_c) / n_c
    difference = s_v / n_v - ratio * s_c / n_c
    if variance <= 0:  # restricted rates at 0 or 1: only at nulls so far out that nothing supports them
        return math.copysign(math.inf, difference)
    return difference / math.sqrt(variance)


def _statistic(s_v: int, n_v: int, s_c: int, n_c: int) -> tuple[float, float]:
    """z at no difference and the information r of the counts (:func:`lamed.mixture.information`
    at their pooled rate)."""
    return score_statistic(s_v, n_v, s_c, n_c), information((s_v + s_c) / (n_v + n_c), n_v, n_c)


def always_valid_p_value(s_v: int, n_v: int, s_c: int, n_c: int) -> float:
    """min(1, 1 / the mixture likelihood ratio of no difference): P(it ever falls to alpha
    or below, however often it is looked at) <= alpha when the rates are equal. Never below
    the pooled z-test's p-value of the same counts (see docs/statistics.md)."""
    _checked_pair(s_v, n_v, s_c, n_c)
    return _p_value_of(_statistic(s_v, n_v, s_c, n_c))


def _p_value_of(statistic: tuple[float, float]) -> float:
    return min(1.0, math.exp(-log_mixture_likelihood_ratio(*statistic)))


def always_valid_uplift_interval(s_v: int, n_v: int, s_c: int, n_c: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The relative uplifts whose mixture likelihood ratio stays below 1/alpha: a confidence
    sequence, covering the true uplift at every look at once with probability >= 1 - alpha.
    With the information r of the counts, that is where the score statistic of the null stays
    within +-z_boundary(r, alpha); each end found by bracketing and the Illinois method. A
    variant without conversions has its lower end at -100%; a control without any has no
    relative uplift (:class:`Undefined`)."""
    rate, control_rate = _checked_pair(s_v, n_v, s_c, n_c)
    if control_rate == 0:
        raise Undefined("the control has a 0% rate")
    bound = z_boundary(information((s_v + s_c) / (n_v + n_c), n_v, n_c), alpha)
    # Inside: the estimate, or for a variant without conversions, its rate taken as half a conversion.
    centre = math.log(max(rate, 0.5 / n_v) / control_rate)
    while score_statistic(s_v, n_v, s_c, n_c, centre) >= bound:  # only without conversions
        centre -= 1
    step = math.sqrt(1 / (s_v + 0.5) + 1 / s_c)  # about the standard error of the log ratio
    high = _boundary(lambda null: -score_statistic(s_v, n_v, s_c, n_c, null) - bound, centre, step)
    low = -math.inf
    if s_v:
        low = _boundary(lambda null: score_statistic(s_v, n_v, s_c, n_c, null) - bound, centre, -step)
    return math.expm1(low), math.expm1(high)


def _boundary(excess, inside: float, step: float) -> float:
    """Where ``excess`` (negative at ``inside``, positive far enough out) turns positive going
    from ``inside`` by ``step``s doubling: a bracket, then the Illinois variant of regula falsi."""
    a, f_a = inside, excess(inside)
    b = inside + step
    f_b = excess(b)
    while f_b < 0:
        a, f_a, step = b, f_b, step * 2
        b = a + step
        f_b = excess(b)
    side = 0
    for _ in range(200):
        if f_b == math.inf:  # the statistic is infinite out there: halve the bracket instead
            middle = (a + b) / 2
            f_middle = excess(middle)
        else:
            middle = (a * f_b - b * f_a) / (f_b - f_a)
            f_middle = excess(middle)
        if f_middle >= 0:
            b, f_b = middle, f_middle
            if side == 1:
                f_a /= 2
            side = 1
        else:
            a, f_a = middle, f_middle
            if side == -1 and f_b != math.inf:
                f_b /= 2
            side = -1
        if abs(b - a) <= 1e-12 * (1 + abs(a)):
            break
    return (a + b) / 2


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the given order: the k-th smallest p becomes
    max over j <= k of min(1, (m - j + 1) p_(j)). A None (no p-value) counts among the m
    hypotheses as a p of 1 and stays None. Rejecting where the adjusted p <= alpha keeps the
    family-wise error at alpha under any dependence (Holm 1979)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i] is None, p_values[i] or 0.0))
    adjusted: list[float | None] = [None] * m
    running = 0.0
    for rank, index in enumerate(order):
        if p_values[index] is None:
            break
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


FEW = f"fewer than {MIN_TRIALS} participants on a side"


def sequential_family(
    comparisons: list[tuple[int, int, int, int]],
    alpha: float = ALPHA,
    earlier: list[tuple[float, int] | None] | None = None,
    intervals: bool = True,
) -> list[dict]:
    """The always-valid figures and decision of each comparison ``(s_v, n_v, s_c, n_c)`` of
    one experiment (every variant but the control, for every unique goal), corrected together:
    ``sequential_p_value`` Holm-adjusted, ``sequential_uplift_ci`` at level alpha / m
    (Bonferroni: all m intervals hold at once; skipped without ``intervals``), ``decision``;
    a null figure's reason in ``notes``. A comparison is judged only with MIN_TRIALS
    participants on both sides: below, its p-value is null and its decision
    ``insufficient_data`` (as without the statistic), and it counts in Holm's m as a p of 1.
    A judged comparison is ``winner`` / ``loser`` where the adjusted p is at most alpha (by
    the sign of the difference), else ``inconclusive``.

    Each figure's ``evidence`` is ``(raw p, direction)`` of its judged look with the smallest
    raw p (+1: the variant converts more), None before any. ``earlier``, when given, holds the
    evidence of the earlier looks: the raw p becomes the running minimum over the judged
    looks, the always-valid p of Johari et al., which never rises, so a decision once reached
    is not lost, and its direction is that of the look that set the minimum."""
    statistics = [_statistic_or_reason(counts) for counts in comparisons]
    evidence = []
    for index, (counts, statistic) in enumerate(zip(comparisons, statistics)):
        now = None
        if not isinstance(statistic, str) and min(counts[1], counts[3]) >= MIN_TRIALS:
            now = (_p_value_of(statistic), 1 if statistic[0] > 0 else -1)
        before = earlier[index] if earlier is not None else None
        evidence.append(before if now is None or (before is not None and before[0] <= now[0]) else now)
    adjusted = holm([found[0] if found else None for found in evidence])
    interval_alpha = alpha / max(1, len(comparisons))
    figures = []
    for counts, statistic, found, p in zip(comparisons, statistics, evidence, adjusted):
        notes = {}
        if isinstance(statistic, str):
            notes = {"sequential_p_value": statistic, "sequential_uplift_ci": statistic}
        elif found is None:
            notes["sequential_p_value"] = FEW
        if p is None:
            decision = "insufficient_data"
        elif p <= alpha:
            decision = "winner" if found[1] > 0 else "loser"
        else:
            decision = "inconclusive"
        interval = None
        if intervals and not isinstance(statistic, str):
            try:
                interval = list(always_valid_uplift_interval(*counts, alpha=interval_alpha))
            except Undefined as reason:
                notes["sequential_uplift_ci"] = str(reason)
        figures.append({"sequential_p_value": p, "sequential_uplift_ci": interval, "decision": decision,
                        "evidence": found, "notes": notes})  # fmt: skip
    return figures


def _statistic_or_reason(counts: tuple[int, int, int, int]) -> tuple[float, float] | str:
    """:func:`_statistic` of the counts, or the reason it does not exist."""
    try:
        _checked_pair(*counts)
    except Undefined as reason:
        return str(reason)
    return _statistic(*counts)


# -- results of GET /experiments -> figures ---------------------------------------------------

UNDECLARED = "each goal is assumed unique (AlephBet's default), counted once per participant"
NOT_UNIQUE = "a non-unique goal counts events, not participants: no rate, comparison or decision"
DECIDED_NOTE = "already decided"
RECENT_DAYS = 7  # the traffic behind days_remaining: the participants of the last complete days


def analyse(
    entries: list, namespace: str, control: str | None = None, experiment: str | None = None, mde: float | None = None
) -> dict:
    """The figures of every experiment in ``entries`` (``GET /experiments``'s list; its
    ``meta`` item is skipped), or of the one named ``experiment``.

    The control is ``control`` when given (ValueError when it names none of an experiment's
    variants), else the declared one (``entry["declared"]["control"]``), else the variant
    named ``control``, else the first in sorted order. Undefined figures are None, with the
    reason in the row's ``notes`` (``srm_note`` for SRM). ``needed_per_variant`` sizes an
    undecided comparison for the relative effect ``mde`` when given, else for the observed one.
    """
    experiments = [entry for entry in entries if not (isinstance(entry, dict) and "meta" in entry)]
    if experiment is not None:
        names = [_field(entry, "experiment", str, "an experiment") for entry in experiments]
        if experiment not in names:
            known = ", ".join(names) or "none yet"
            raise ValueError(f"no experiment '{experiment}' in namespace '{namespace}' (experiments: {known})")
        experiments = [entry for entry, name in zip(experiments, names) if name == experiment]
    return {"namespace": namespace, "experiments": [_experiment(entry, control, mde) for entry in experiments]}


def is_unique(goal: dict) -> bool:
    """Whether a goal counts participants (AlephBet's default), not events (``"unique": false``)."""
    return goal.get("unique") is not False


def _experiment(entry, requested_control: str | None, mde: float | None) -> dict:
    name = _field(entry, "experiment", str, "an experiment")
    where = f"experiment '{name}'"
    goals = _field(entry, "goals", list, where)
    trials = participants(entry)
    labels = sorted(trials)
    declared = entry.get("declared") if isinstance(entry.get("declared"), dict) else None
    control = _control(labels, requested_control or (declared or {}).get("control"), where)
    result = {"experiment": name, "control": control}
    weights = (declared or {}).get("weights")
    result |= _srm(entry, labels, [weights.get(label, 0) for label in labels] if isinstance(weights, dict) else None)
    if declared is None:
        result["goals_note"] = UNDECLARED
    order = sorted(labels, key=lambda label: label != control)  # the control first
    result["goals"] = [_goal(goal, order, trials, control, where) for goal in goals]
    stopped = bool((declared or {}).get("stopped"))
    _add_sequential(result["goals"], mde, _traffic(entry, order), stopped)
    return result


def _traffic(entry: dict, labels: list[str]) -> dict[str, float] | None:
    """Participants a day per variant over the last RECENT_DAYS complete days of the daily
    counts (the last day, under way, left out unless it is the only one); None without them."""
    calendar = days.calendar(_daily(entry))
    if not calendar:
        return None
    recent = (calendar[:-1] or calendar)[-RECENT_DAYS:]
    counts = [_daily(entry).get(day, {}).get(PARTICIPATE, {}) for day in recent]
    return {label: sum(day.get(label, 0) for day in counts) / len(recent) for label in labels}


def _add_sequential(goals: list, mde: float | None, traffic: dict | None, stopped: bool) -> None:
    """Every row gets the always-valid figures, the decision and the participants and days still
    needed (WAITING), the comparisons of the unique goals corrected together as one family (each
    unique goal's rows after its first, the control's, which gets None; a non-unique goal's rows
    get None, with the reason); ``notes`` stays the row's last key."""
    compared = [(row, goal["variants"][0]) for goal in goals if goal["unique"] for row in goal["variants"][1:]]
    family = sequential_family([(*_counts(row), *_counts(control_row)) for row, control_row in compared])
    found = {id(row): figures for (row, _), figures in zip(compared, family)}
    for goal in goals:
        control_row = goal["variants"][0]
        for row in goal["variants"]:
            figures = found.get(id(row), {"notes": {}})
            notes = row.pop("notes", {}) | figures["notes"]
            row.update({field: figures.get(field) for field in (*SEQUENTIAL, *WAITING)})
            if id(row) in found:
                notes |= _waiting(row, control_row, figures, len(family), mde, traffic, stopped)
            elif row is not control_row:  # a non-unique goal's
                notes |= dict.fromkeys(("sequential_p_value", "sequential_uplift_ci", *WAITING), NOT_UNIQUE)
            if notes:
                row["notes"] = notes


def _waiting(row: dict, control_row: dict, figures: dict, comparisons: int, mde, traffic, stopped: bool) -> dict:
    """Sets the row's ``needed_per_variant`` and ``days_remaining`` where they exist; the notes
    of those that do not."""
    if figures["decision"] in ("winner", "loser"):
        return dict.fromkeys(WAITING, DECIDED_NOTE)
    try:
        needed = _needed((*_counts(row), *_counts(control_row)), comparisons, mde)
    except (Undefined, planner.Unplannable) as reason:
        return dict.fromkeys(WAITING, str(reason))
    row["needed_per_variant"] = needed
    if stopped:
        return {"days_remaining": "the experiment is stopped"}
    if traffic is None:
        return {"days_remaining": "no daily counts: read the results with their days"}
    slowest = min(traffic[row["label"]], traffic[control_row["label"]])
    if slowest <= 0:
        return {"days_remaining": f"no participants on a side in the last {RECENT_DAYS} days"}
    row["days_remaining"] = math.ceil(needed / slowest)
    return {}


def _needed(counts: tuple[int, int, int, int], comparisons: int, mde: float | None) -> int:
    """Participants per variant still needed (on the side with more): for the relative effect
    ``mde``, the planner's 80%-power size less those already in; else for the observed effect,
    as it is, until its statistic reaches the boundary. At least up to MIN_TRIALS a side."""
    s_v, n_v, s_c, n_c = counts
    control_rate = _check(s_c, n_c, "control")
    _check(s_v, n_v, "variant")
    if mde is not None:
        target = planner.participants_per_variant(control_rate, mde, comparisons)
    else:
        _checked_pair(*counts)
        growth = planner.growth_to_decide(*_statistic(*counts), comparisons)
        target = math.ceil(growth * max(n_v, n_c))
    return max(0, max(target, MIN_TRIALS) - max(n_v, n_c), MIN_TRIALS - min(n_v, n_c))


def _counts(row: dict) -> tuple[int, int]:
    return row["successes"], row["trials"]


def participants(entry: dict) -> dict[str, int]:
    """Trials per variant of one experiment entry: lamed's ``variants``; else, from an
    original Lamed, the goals' results (a variant listed only in a goal has 0 under lamed)."""
    where = f"experiment '{_field(entry, 'experiment', str, 'an experiment')}'"
    trials = {}
    for goal in _field(entry, "goals", list, where):
        for row in _results(goal, where):
            trials.setdefault(_field(row, "label", str, where), _count(row, "trials", where))
    if "variants" in entry:
        trials = dict.fromkeys(trials, 0)
        for row in _field(entry, "variants", list, where):
            trials[_field(row, "label", str, where)] = _count(row, "trials", where)
    return trials


def _control(labels: list, requested: str | None, where: str) -> str | None:
    if requested is None:
        return CONTROL_NAME if CONTROL_NAME in labels else next(iter(labels), None)
    if requested not in labels:
        variants = ", ".join(labels) or "none yet"
        raise ValueError(f"{where} has no variant '{requested}' to use as the control (variants: {variants})")
    return requested


def _goal(goal: dict, order: list, trials: dict, control: str | None, where: str) -> dict:
    name = _field(goal, "goal", str, where)
    successes = {_field(row, "label", str, where): _count(row, "successes", where) for row in _results(goal, where)}
    counts = {label: (successes.get(label, 0), trials[label]) for label in order}
    if not is_unique(goal):
        return {"goal": name, "unique": False, "variants": [_event_row(label, *counts[label], label == control) for label in order]}
    rows = [_row(label, counts[label], None if label == control else counts[control]) for label in order]
    return {"goal": name, "unique": True, "variants": rows}


def _event_row(label: str, events: int, trials: int, is_control: bool) -> dict:
    """One variant of a non-unique goal: its events and events per participant, the rest null."""
    row = {"label": label, "trials": trials, "successes": events, "events_per_participant": None}
    notes = {}
    if trials > 0 and events >= 0:
        row["events_per_participant"] = events / trials
    else:
        notes["events_per_participant"] = "no participants yet" if trials == 0 else "a negative count"
    row |= {field: None for field in ("rate", "rate_ci", *COMPARISONS)}
    notes |= {field: NOT_UNIQUE for field in ("rate", "rate_ci", *([] if is_control else COMPARISONS))}
    return row | {"notes": notes}


def _row(label: str, counts: tuple[int, int], control_counts: tuple[int, int] | None) -> dict:
    """One variant's figures; the comparisons stay None for the control itself."""
    s, n = counts
    row = {"label": label, "trials": n, "successes": s}
    figures = {"rate": lambda: _check(s, n), "rate_ci": lambda: list(wilson_interval(s, n))}
    if control_counts is not None:
        both = (s, n, *control_counts)
        figures |= {
            "uplift": lambda: uplift(*both),
            "uplift_ci": lambda: list(uplift_interval(*both)),
            "p_value": lambda: two_proportion_p_value(*both),
            "chance_to_beat_control": lambda: chance_to_beat(*both),
        }
    notes = {}
    for field, compute in figures.items():
        try:
            row[field] = compute()
        except Undefined as reason:
            row[field], notes[field] = None, str(reason)
    row |= {field: None for field in COMPARISONS if field not in row}
    if notes:
        row["notes"] = notes
    return row


def _results(goal, where: str) -> list:
    return _field(goal, "results", list, f"{where}, goal '{goal.get('goal')}'" if isinstance(goal, dict) else where)


def _field(mapping, key: str, kind: type, where: str):
    """``mapping[key]``, or NotLamedShape saying what is missing from where."""
    if not isinstance(mapping, dict) or not isinstance(mapping.get(key), kind):
        raise NotLamedShape(f"{where} has no '{key}' {kind.__name__}")
    return mapping[key]


def _count(row, key: str, where: str) -> int:
    value = _field(row, key, int, where)
    if isinstance(value, bool):
        raise NotLamedShape(f"{where} has '{key}' {value!r}, not a count")
    return value
