"""Rank correlation between two scorings of the same architectures: how well a proxy ranks.

Kendall's tau-b (and Spearman's rho) is undefined when either side gives every architecture
the same score: there is no ranking to compare. That is NaN here, and shown as such; it is
never replaced by 0, which would read as "measured: no better than chance".

Example:
    >>> round(kendall([0.1, 0.2, 0.3], [0.5, 0.7, 0.6]), 3)
    0.333
    >>> kendall([0.1, 0.1, 0.1], [0.5, 0.7, 0.6])
    nan
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats

__all__ = ["kendall", "spearman"]


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of ``x`` against ``y`` (same order of architectures); NaN when a side is constant."""
    if _undefined(x, y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of ``x`` against ``y``; NaN when a side is constant."""
    if _undefined(x, y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def _undefined(x: Sequence[float], y: Sequence[float]) -> bool:
    if len(x) != len(y):
        raise ValueError(f"{len(x)} scores against {len(y)}: both sides must score the same architectures")
    return len(set(x)) < 2 or len(set(y)) < 2
