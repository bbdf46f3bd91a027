"""Each benchmark script runs end to end at a tiny size (the real figures live in the README)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent


def run_fidelity(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "benchmarks/proxy_fidelity.py", "--tiny", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_proxy_fidelity_benchmark_rates_each_recipe_against_a_seed_averaged_reference(tmp_path: Path) -> None:
    out, work = tmp_path / "fidelity.csv", tmp_path / "work"
    printed = run_fidelity("--out", str(out), "--workdir", str(work))
    assert printed.count("reference ceiling: tau between the means of two halves of its seeds (1 + 1") == 2
    assert "Kendall tau [95% interval]" in printed and "vs reference" in printed
    for recipe in ("joint", "units-alone"):
        for seeds in ("seed 0", "seed 1", "mean of 2"):
            row = [recipe, *seeds.split()]
            assert any(line.split()[: len(row)] == row for line in printed.splitlines()), row
    assert printed.count("tau of units-alone minus tau of joint, mean of 2:") == 2  # against each reference
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# ") and "parent_state=" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    # 3 architectures: 2 seeds each of the inherited reference (2 epochs), the scratch one (1) and both recipes (2).
    assert sorted({(r["recipe"], r["epochs"]) for r in rows}) == [
        ("joint", "2"),
        ("reference-inherited", "2"),
        ("reference-scratch", "1"),
        ("units-alone", "2"),
    ]
    assert len(rows) == 3 * 2 * 4 and {r["code"] for r in rows} == {"base", "15mg", "15tg"}
    assert all(0.0 <= float(r["map50-95"]) <= 1.0 and float(r["seconds"]) > 0 for r in rows)

    again = run_fidelity("--out", str(out), "--workdir", str(work))  # the same parent: every run is reused
    assert len(out.read_text().splitlines()) == len(lines)
    assert again.split("\nreference inherited:")[1] == printed.split("\nreference inherited:")[1]


def test_proxy_fidelity_against_a_ground_truth_table_trains_only_the_recipes_it_lacks(tmp_path: Path) -> None:
    """The truth and the shipped recipe's proxies come from the table; the other recipes train on its parent."""
    truth, work, out = tmp_path / "truth.csv", tmp_path / "work", tmp_path / "fidelity.csv"
    table = ("--tiny", "--dataset", "context", "--out", str(truth), "--workdir", str(work))
    made = subprocess.run(
        [sys.executable, "benchmarks/ground_truth.py", *table],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    printed = run_fidelity("--truth", str(truth), "--workdir", str(work), "--out", str(out))
    assert "reference scratch: 3 architectures of yolov8n_p3, 1 epochs from scratch, mean of 2 seeds" in printed
    for recipe in ("joint", "units-alone"):
        assert any(line.split()[:3] == [recipe, "mean", "of"] for line in printed.splitlines()), recipe
    lines = out.read_text().splitlines()
    assert "truth=truth.csv" in lines[0] and "mosaic=off" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    assert {r["recipe"] for r in rows} == {"units-alone"} and len(rows) == 3 * 2  # joint and the truth: the table's

    elsewhere = ("--workdir", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "other.csv"))
    refused = subprocess.run(
        [sys.executable, "benchmarks/proxy_fidelity.py", "--tiny", "--truth", str(truth), *elsewhere],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert refused.returncode != 0 and "give the --workdir ground_truth.py trained it in" in refused.stderr
