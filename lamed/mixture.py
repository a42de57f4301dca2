"""The normal-mixture SPRT behind lamed's always-valid decisions: its level, its tuning, its
likelihood ratio for a score statistic, and the boundary that statistic must cross.

Shared by :mod:`lamed.stats` (the decisions) and :mod:`lamed.planner` (how many participants
they need); docs/statistics.md derives it.
"""

import math

# Family-wise error of the decisions per experiment, whenever and however often anyone looks.
ALPHA = 0.05
# Below MIN_TRIALS participants on a side, a comparison is not judged yet (the normal
# approximation behind the test needs a sample first).
MIN_TRIALS = 100


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
# uplifts of about +-18%.
TUNED_CONVERSIONS = 500
MIXTURE_VARIANCE = _widest_gap_ratio(ALPHA) * 2 / TUNED_CONVERSIONS


def information(pooled_rate: float, n_v: float, n_c: float) -> float:
    """r = tau^2 / V, V the variance of the log rate ratio where both sides convert at the
    pooled rate p: (1 - p) / p (1/n_v + 1/n_c). It grows in proportion to the participants,
    the clock of the mixture martingale."""
    return MIXTURE_VARIANCE * pooled_rate / ((1 - pooled_rate) * (1 / n_v + 1 / n_c))


def log_mixture_likelihood_ratio(z: float, information: float) -> float:
    """log of the mixture SPRT statistic (Johari, Pekelis and Walsh) of a score statistic z with
    information r = tau^2 / V (V: the variance of the log rate ratio): the likelihood of
    z ~ N(theta / sqrt(V), 1) averaged over theta ~ N(0, tau^2), against theta = 0,
    -log(1 + r) / 2 + z^2 r / (2 (1 + r)). Under the null its exponential exceeds 1/alpha at
    any time with probability at most alpha (Ville's inequality)."""
    if math.isinf(information):
        return math.inf
    return -0.5 * math.log1p(information) + z * z * information / (2 * (1 + information))


def z_boundary(information: float, alpha: float = ALPHA) -> float:
    """The |z| at which the mixture likelihood ratio of information r reaches 1/alpha:
    sqrt(2 (1 + r) / r (log(1/alpha) + log(1 + r) / 2))."""
    return math.sqrt(2 * (1 + information) / information * (math.log(1 / alpha) + 0.5 * math.log1p(information)))
