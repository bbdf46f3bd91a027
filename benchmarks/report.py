"""What every benchmark writes with its figures: when, on what machine, with which settings.

Absolute times drift between machines and runs, so a results file is only readable next
to its first line: ``# <date> <machine> <library versions> <settings>``. The scripts in this
folder import this module by its bare name (Python puts the script's folder on the path).
"""

from __future__ import annotations

import csv
import math
import os
import platform
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import ultralytics


def machine() -> str:
    """``<cores>-core <CPU model>``: ``platform.processor()`` is often empty on Linux, /proc/cpuinfo is not."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()}-core {model}"


def header(settings: Mapping[str, Any]) -> str:
    """The first line of a results file: date, machine, versions, then ``name=value`` settings."""
    versions = f"torch {torch.__version__} ultralytics {ultralytics.__version__} optuna {optuna.__version__}"
    pairs = " ".join(f"{name}={value}" for name, value in settings.items())
    return f"# {date.today()} {machine()}; {versions}; {pairs}"


def write_table(
    path: Path, settings: Mapping[str, Any], fields: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> Path:
    """Write ``rows`` as CSV under the :func:`header` line; floats keep 6 significant digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        f.write(header(settings) + "\n")
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of the per-round ratios: each round's pair ran back to back, so drift cancels within it."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def percentile_interval(draws: Iterable[float]) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles of bootstrap ``draws``, over those that have a value.

    A resample can leave a statistic undefined (a tau over architectures that all score the
    same is NaN): such draws are skipped, and with none left the interval is (NaN, NaN).
    """
    kept = [value for value in draws if not math.isnan(value)]
    if not kept:
        return math.nan, math.nan
    low, high = np.percentile(kept, [2.5, 97.5])
    return float(low), float(high)
