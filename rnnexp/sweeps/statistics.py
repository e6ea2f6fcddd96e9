"""The statistics of a comparison of replicated runs: a group's mean, standard deviation and Student-t
confidence interval, and the test of a group against the best one (paired by seed when both groups ran the
same seeds, Welch's unequal-variance t-test otherwise), from ``scipy.stats``. Pure functions of numbers.

Sources: ``scipy.stats.t.interval`` (the interval ``mean ± t_{n-1, 0.975} · s/√n``), ``scipy.stats.ttest_rel``
(paired), ``scipy.stats.ttest_ind(equal_var=False)`` (Welch). Effect sizes: Cohen's d_z for paired samples
(mean difference / standard deviation of the differences) and Cohen's d with the average of the two variances
for Welch (``(m_a - m_b) / sqrt((s_a² + s_b²) / 2)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

NAN = float("nan")


@dataclass(frozen=True)
class Spread:
    """n values: their mean, sample standard deviation (ddof=1) and the ``level`` confidence interval of the
    mean. With n = 1 the std and the interval are NaN (one value says nothing about the spread); n = 0: all
    NaN."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def spread(values: Sequence[float], level: float = 0.95) -> Spread:
    """Mean, std (ddof=1) and the Student-t ``level`` interval of the mean of ``values`` (NaNs must be removed
    by the caller: a failed replicate is counted, not averaged)."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Spread(0, NAN, NAN, NAN, NAN)
    mean = float(data.mean())
    if n == 1:
        return Spread(1, mean, NAN, NAN, NAN)
    std = float(data.std(ddof=1))
    if std == 0.0:
        return Spread(n, mean, 0.0, mean, mean)
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=std / math.sqrt(n))
    return Spread(n, mean, std, float(low), float(high))


@dataclass(frozen=True)
class Test:
    """A two-sample test of group b against group a (the best). ``test``: ``paired t`` | ``Welch t`` |
    ``none`` (why in ``note``); ``effect``: Cohen's d_z (paired) or d (Welch) of a − b."""

    test: str
    statistic: float
    p_value: float
    effect: float
    note: str = ""

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def compare(a: Mapping[object, float], b: Mapping[object, float]) -> Test:
    """Test whether the means of ``a`` and ``b`` (replicate key → value, e.g. seed → objective) differ.

    Paired (``ttest_rel``, effect d_z) when both have the same replicate keys, at least two; Welch
    (``ttest_ind(equal_var=False)``, effect d) otherwise, when each has at least two values; no test
    (``test="none"``) when a group has a single value, or when the values do not vary at all.
    """
    if len(a) < 2 or len(b) < 2:
        return Test("none", NAN, NAN, NAN, f"n = {min(len(a), len(b))}: no test with fewer than 2 replicates")
    if set(a) == set(b):
        keys = sorted(a, key=str)
        x, y = np.array([a[k] for k in keys], float), np.array([b[k] for k in keys], float)
        diff = x - y
        if np.ptp(diff) <= 1e-12 * max(1.0, float(np.abs(diff).max())):  # equal up to rounding
            note = "identical" if np.abs(diff).max() <= 1e-12 else "constant difference"
            return Test("paired t", NAN, NAN, NAN, f"paired differences are all equal ({note}): no variance")
        result = stats.ttest_rel(x, y)
        effect = float(diff.mean() / diff.std(ddof=1))
        return Test("paired t", float(result.statistic), float(result.pvalue), effect)
    x, y = np.array(list(a.values()), float), np.array(list(b.values()), float)
    pooled = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    if pooled == 0.0:
        return Test("Welch t", NAN, NAN, NAN, "neither group varies: no variance")
    result = stats.ttest_ind(x, y, equal_var=False)
    return Test(
        "Welch t", float(result.statistic), float(result.pvalue), float((x.mean() - y.mean()) / pooled)
    )
