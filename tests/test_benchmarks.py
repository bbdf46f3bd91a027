"""Each benchmark script runs end to end at a tiny size (the real figures live in the README)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent


def test_proxy_fidelity_benchmark_runs_and_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "fidelity.csv"
    result = subprocess.run(
        [sys.executable, "benchmarks/proxy_fidelity.py", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "(b) 1 epochs inherited" in result.stdout and "Kendall tau" in result.stdout
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# ") and "long_epochs=2" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    assert [r["code"] for r in rows] == ["base", "15mg", "15tg"]
    assert all(0.0 <= float(r[k]) <= 1.0 for r in rows for k in ("scratch", "inherited", "long"))
