"""How long does a ``ge-nas`` command take to start? ``ge-nas --help`` against ``python -c pass``.

Every command imports the package and the command line first; only the commands that
build or train models load torch and Ultralytics. This times, in fresh processes and in
alternating rounds (ABBA...) so drift hits all alike:

  python -c pass                 the interpreter alone (the floor)
  ge-nas --help                  the command line, every command registered
  python -c "import torch, ultralytics"   what the reading commands no longer pay

and prints the medians and the ratio of ``--help`` to the floor. Run from the repository root:

    python benchmarks/startup.py            # 15 rounds
    python benchmarks/startup.py --tiny     # 2 rounds
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import write_table

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "ge-nas --help": [sys.executable, "-m", "ge_nas", "--help"],
    "import torch, ultralytics": [sys.executable, "-c", "import torch, ultralytics"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: 2 rounds")
    args = parser.parse_args()
    if args.tiny:
        args.rounds = 2
    names = list(COMMANDS)
    for name in names:  # warm the file cache once, untimed
        subprocess.run(COMMANDS[name], capture_output=True, check=True)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    rows = []
    for round_number in range(args.rounds):
        for name in names if round_number % 2 == 0 else reversed(names):
            start = time.perf_counter()
            subprocess.run(COMMANDS[name], capture_output=True, check=True)
            seconds[name].append(time.perf_counter() - start)
            rows.append({"round": round_number, "command": name, "seconds": seconds[name][-1]})
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    for name in names:
        low, high = min(seconds[name]), max(seconds[name])
        print(f"{name:<28} median {medians[name]:.3f} s  (min {low:.3f}, max {high:.3f}, {args.rounds} runs)")
    print(f"ge-nas --help / python -c pass: {medians['ge-nas --help'] / medians['python -c pass']:.1f}x")
    print(f"ge-nas --help takes {medians['ge-nas --help'] - medians['python -c pass']:.3f} s more than the interpreter")
    write_table(args.out, {"rounds": args.rounds}, ["round", "command", "seconds"], rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
