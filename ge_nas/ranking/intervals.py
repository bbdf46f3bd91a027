"""Means with 95 % intervals over a few seeds, and gains paired by seed.

A proxy's accuracy moves with its training seed by as much as the gains a search reports
(0.017 mAP50-95 standard deviation over 5 seeds of the demo's baseline), so every accuracy
and gain ge-nas reports carries an interval. With a handful of seeds the interval is
Student's t: ``mean ± t(0.975, n−1) · sd / √n``. One seed gives no interval at all (None), and
ge-nas says so rather than pretending.

Gains are *paired*: seed ``s`` of a candidate against seed ``s`` of the baseline. Both runs
start from the same parent and see the same batches in the same order, so much of the seed's
effect cancels in their difference.

Example:
    >>> estimate = mean_interval([0.64, 0.63, 0.65])
    >>> round(estimate.mean, 3), round(estimate.low, 3), round(estimate.high, 3)
    (0.64, 0.615, 0.665)
    >>> gain = paired_gain({0: 0.66, 1: 0.65, 2: 0.68}, {0: 0.64, 1: 0.63, 2: 0.65})
    >>> gain.n, round(gain.mean, 3), gain.low > 0
    (3, 0.023, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

__all__ = ["CONFIDENCE", "Estimate", "difference_interval", "mean_interval", "paired_gain"]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds and its interval (None with one seed: nothing to say how far it may be off)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly above or below 0: a difference beyond the seed noise."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The mean of ``values`` and its Student's t interval (a point, no interval, for one value).

    Raises:
        ValueError: ``values`` is empty.
    """
    n = len(values)
    if n == 0:
        raise ValueError("a mean needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, None, None, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def paired_gain(
    candidate: Mapping[int, float], baseline: Mapping[int, float], confidence: float = CONFIDENCE
) -> Estimate | None:
    """The candidate's gain over the baseline, seed by seed, over the seeds both have; None if none."""
    common = sorted(set(candidate) & set(baseline))
    if not common:
        return None
    return mean_interval([candidate[s] - baseline[s] for s in common], confidence)


def difference_interval(
    with_it: Sequence[float], without: Sequence[float], confidence: float = CONFIDENCE
) -> Estimate | None:
    """Mean of ``with_it`` minus mean of ``without``, with Welch's t interval (unequal spreads).

    For two groups of architectures (say, those with a GE unit at a point and those without
    GE there): None if either is empty; no interval unless both hold two values or more.
    """
    if not with_it or not without:
        return None
    a, b = mean_interval(with_it), mean_interval(without)
    difference = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Estimate(difference, None, None, a.n)
    va = math.fsum((v - a.mean) ** 2 for v in with_it) / (a.n - 1) / a.n
    vb = math.fsum((v - b.mean) ** 2 for v in without) / (b.n - 1) / b.n
    if va + vb == 0:
        return Estimate(difference, difference, difference, a.n)
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, dof)) * math.sqrt(va + vb)
    return Estimate(difference, difference - half, difference + half, a.n)
