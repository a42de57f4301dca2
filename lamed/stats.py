"""The statistics of A/B results: rates, intervals, tests, chance to beat control, SRM, and
the always-valid decisions (a mixture SPRT per comparison, Holm over each experiment).

Pure Python (``math`` and ``statistics`` only), so it runs wherever lamed runs.
:func:`analyse` turns the entries of ``GET /experiments`` into the figures of
``lamed results --format json``; the functions above it compute one figure each and
raise :class:`Undefined`, whose message says why, where a figure does not exist.
"""

import math
from statistics import NormalDist

Z_95 = NormalDist().inv_cdf(0.975)
SRM_THRESHOLD = 0.001
CONTROL_NAME = "control"
COMPARISONS = ("uplift", "uplift_ci", "p_value", "chance_to_beat_control")
SEQUENTIAL = ("sequential_p_value", "sequential_uplift_ci", "decision")
DECISIONS = ("winner", "loser", "inconclusive", "insufficient_data")
# The decisions: family-wise error ALPHA per experiment, whenever and however often anyone
# looks; below MIN_TRIALS participants on a side, a variant is not judged yet.
ALPHA = 0.05
MIN_TRIALS = 100


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


def srm_p_value(trials: list[int]) -> float:
    """P-value of the chi-square goodness-of-fit test of the trials against an equal split."""
    if any(n < 0 for n in trials):
        raise Undefined("a variant has a negative number of participants")
    total = sum(trials)
    if total == 0:
        raise Undefined("no participants yet")
    if len(trials) < 2:
        raise Undefined("only one variant: there is no split to check")
    expected = total / len(trials)
    statistic = sum((n - expected) ** 2 for n in trials) / expected
    return chi_square_survival(statistic, len(trials) - 1)


def chi_square_survival(statistic: float, degrees: int) -> float:
    """P(X >= statistic) for X chi-square with ``degrees`` degrees of freedom."""
    return _upper_gamma(degrees / 2, statistic / 2)


def _upper_gamma(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x): its series below a + 1, its
    continued fraction (modified Lentz) above."""
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1 / a
        n = a
        while abs(term) > abs(total) * 1e-16:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    value = d
    for i in range(1, 100_000):
        numerator = -i * (i - a)
        b += 2
        d = numerator * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + numerator / c
        c = c if abs(c) > tiny else tiny
        value *= c * d
        if abs(c * d - 1) < 1e-16:
            break
    return value * math.exp(log_front)


# -- always-valid inference: a mixture SPRT on the log rate ratio --------------------------------


def log_rate_ratio(s_v: int, n_v: int, s_c: int, n_c: int) -> tuple[float, float]:
    """The estimate of log(rate / control rate) and its delta-method variance, with 1/2
    added to each side's successes and failures (Haldane-Anscombe), so a side without
    successes still has both: log((s_v+1/2)/(n_v+1)) - log((s_c+1/2)/(n_c+1)) and
    1/(s_v+1/2) - 1/(n_v+1) + 1/(s_c+1/2) - 1/(n_c+1)."""
    _check(s_v, n_v, "variant")
    _check(s_c, n_c, "control")
    if s_v + s_c == 0:
        raise Undefined("no conversions in either variant")
    if s_v + s_c == n_v + n_c:
        raise Undefined("every participant converted in both variants")
    estimate = math.log((s_v + 0.5) / (n_v + 1)) - math.log((s_c + 0.5) / (n_c + 1))
    variance = 1 / (s_v + 0.5) - 1 / (n_v + 1) + 1 / (s_c + 0.5) - 1 / (n_c + 1)
    return estimate, variance


def _widest_gap_ratio(alpha: float) -> float:
    """The r = tau^2 / V at which the normal-mixture boundary of level alpha is narrowest:
    the root of r = 2 log(1/alpha) + log(1 + r), where the derivative of the squared
    half-width V (1 + 1/r) (2 log(1/alpha) + log(1 + r)) in r vanishes."""
    ratio = 2 * math.log(1 / alpha)
    for _ in range(60):
        ratio = 2 * math.log(1 / alpha) + math.log1p(ratio)
    return ratio


# The mixing distribution: N(0, MIXTURE_VARIANCE) over the log rate ratio, tuned so that the
# always-valid interval at level ALPHA is narrowest when each side has TUNED_CONVERSIONS
# conversions (where the log ratio's variance is about 2 / conversions): tau = 0.18, relative
# uplifts of about +-18%. See docs/statistics.md (Always-valid decisions).
TUNED_CONVERSIONS = 500
MIXTURE_VARIANCE = _widest_gap_ratio(ALPHA) * 2 / TUNED_CONVERSIONS


def log_mixture_likelihood_ratio(estimate: float, variance: float, null: float = 0.0) -> float:
    """log of the mixture SPRT statistic (Johari, Pekelis and Walsh) for the log rate ratio
    being ``null``: the likelihood of ``estimate`` ~ N(theta, variance) averaged over
    theta ~ N(null, MIXTURE_VARIANCE), against theta = null. Under the null, its exponential
    exceeds 1/alpha at any time with probability at most alpha (Ville's inequality)."""
    total = variance + MIXTURE_VARIANCE
    return 0.5 * math.log(variance / total) + (estimate - null) ** 2 * MIXTURE_VARIANCE / (2 * variance * total)


def always_valid_p_value(s_v: int, n_v: int, s_c: int, n_c: int) -> float:
    """min(1, 1 / the mixture likelihood ratio of no difference): P(it ever falls to alpha
    or below, however often it is looked at) <= alpha when the rates are equal."""
    return _p_value_of(*log_rate_ratio(s_v, n_v, s_c, n_c))


def always_valid_uplift_interval(s_v: int, n_v: int, s_c: int, n_c: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The relative uplifts whose mixture likelihood ratio stays below 1/alpha: a confidence
    sequence, covering the true uplift at every look at once with probability >= 1 - alpha."""
    return _interval_of(*log_rate_ratio(s_v, n_v, s_c, n_c), alpha)


def _statistic_or_reason(counts: tuple[int, int, int, int]) -> tuple[float, float] | str:
    """:func:`log_rate_ratio` of the counts, or the reason it does not exist."""
    try:
        return log_rate_ratio(*counts)
    except Undefined as reason:
        return str(reason)


def _p_value_of(estimate: float, variance: float) -> float:
    return min(1.0, math.exp(-log_mixture_likelihood_ratio(estimate, variance)))


def _interval_of(estimate: float, variance: float, alpha: float) -> tuple[float, float]:
    """{theta: mixture likelihood ratio < 1/alpha} in closed form on the log scale, mapped back by exp - 1."""
    total = variance + MIXTURE_VARIANCE
    half = math.sqrt(variance * total / MIXTURE_VARIANCE * (2 * math.log(1 / alpha) + math.log(total / variance)))
    return math.expm1(estimate - half), math.expm1(estimate + half)


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


def sequential_family(
    comparisons: list[tuple[int, int, int, int]], alpha: float = ALPHA, earlier: list[float | None] | None = None
) -> list[dict]:
    """The always-valid figures and decision of each comparison ``(s_v, n_v, s_c, n_c)`` of
    one experiment (every variant but the control, for every goal), corrected together:
    ``sequential_p_value`` Holm-adjusted, ``sequential_uplift_ci`` at level alpha / m
    (Bonferroni: all m intervals hold at once), ``decision``; a null figure's reason in
    ``notes``. ``decision`` is ``insufficient_data`` without the statistic or below
    MIN_TRIALS participants on a side, else ``winner`` / ``loser`` where the adjusted p is
    at most alpha (by the sign of the estimate), else ``inconclusive``.

    ``earlier``, when given, holds each comparison's smallest raw p at earlier looks (None for
    none): the raw p becomes the running minimum, the always-valid p of Johari et al., which
    never rises, so a decision once reached is not lost. Each figure carries its ``raw_p_value``
    (before Holm; the running minimum when ``earlier`` is given) for the next look."""
    statistics = [_statistic_or_reason(counts) for counts in comparisons]
    raw = [_p_value_of(*statistic) if isinstance(statistic, tuple) else None for statistic in statistics]
    if earlier is not None:
        raw = [min((p for p in pair if p is not None), default=None) for pair in zip(raw, earlier)]
    interval_alpha = alpha / max(1, len(comparisons))
    figures = []
    for counts, statistic, adjusted, raw_p in zip(comparisons, statistics, holm(raw), raw):
        if isinstance(statistic, str):
            figures.append({"sequential_p_value": None, "sequential_uplift_ci": None, "decision": "insufficient_data",
                            "raw_p_value": None, "notes": {"sequential_p_value": statistic, "sequential_uplift_ci": statistic}})  # fmt: skip
            continue
        if min(counts[1], counts[3]) < MIN_TRIALS:
            decision = "insufficient_data"
        elif adjusted <= alpha:
            decision = "winner" if statistic[0] > 0 else "loser"
        else:
            decision = "inconclusive"
        interval = list(_interval_of(*statistic, interval_alpha))
        figures.append(
            {"sequential_p_value": adjusted, "sequential_uplift_ci": interval, "decision": decision, "raw_p_value": raw_p, "notes": {}}
        )
    return figures


# -- results of GET /experiments -> figures ---------------------------------------------------


def analyse(entries: list, namespace: str, control: str | None = None, experiment: str | None = None) -> dict:
    """The figures of every experiment in ``entries`` (``GET /experiments``'s list; its
    ``meta`` item is skipped), or of the one named ``experiment``.

    The control is the variant named ``control``, else the first in sorted order, unless
    ``control`` names one; ValueError when it names none of an experiment's variants.
    Undefined figures are None, with the reason in the row's ``notes`` (``srm_note`` for SRM).
    """
    experiments = [entry for entry in entries if not (isinstance(entry, dict) and "meta" in entry)]
    if experiment is not None:
        names = [_field(entry, "experiment", str, "an experiment") for entry in experiments]
        if experiment not in names:
            known = ", ".join(names) or "none yet"
            raise ValueError(f"no experiment '{experiment}' in namespace '{namespace}' (experiments: {known})")
        experiments = [entry for entry, name in zip(experiments, names) if name == experiment]
    return {"namespace": namespace, "experiments": [_experiment(entry, control) for entry in experiments]}


def _experiment(entry, requested_control: str | None) -> dict:
    name = _field(entry, "experiment", str, "an experiment")
    where = f"experiment '{name}'"
    goals = _field(entry, "goals", list, where)
    trials = participants(entry)
    labels = sorted(trials)
    control = _control(labels, requested_control, where)
    result = {"experiment": name, "control": control}
    try:
        p = srm_p_value([trials[label] for label in labels])
        result.update(srm_p_value=p, srm=p < SRM_THRESHOLD)
    except Undefined as reason:
        result.update(srm_p_value=None, srm=False, srm_note=str(reason))
    order = sorted(labels, key=lambda label: label != control)  # the control first
    result["goals"] = [_goal(goal, order, trials, control, where) for goal in goals]
    _add_sequential(result["goals"])
    return result


def _add_sequential(goals: list) -> None:
    """Every row gets the always-valid figures and the decision, corrected over the
    experiment's whole family (each goal's rows after its first, the control's, which
    gets None); ``notes`` stays the row's last key."""
    compared = [(row, goal["variants"][0]) for goal in goals for row in goal["variants"][1:]]
    family = iter(sequential_family([(*_counts(row), *_counts(control_row)) for row, control_row in compared]))
    for goal in goals:
        for index, row in enumerate(goal["variants"]):
            found = next(family) if index else {"notes": {}}
            notes = row.pop("notes", {}) | found["notes"]
            row.update({field: found.get(field) for field in SEQUENTIAL})
            if notes:
                row["notes"] = notes


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
    rows = [_row(label, counts[label], None if label == control else counts[control]) for label in order]
    return {"goal": name, "variants": rows}


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
