"""How faithful are short proxies? Scratch vs inherited proxies against a long reference run.

On an enumerable search space and the built-in synthetic dataset, every architecture is
evaluated three ways, with the same seed and data:

  (a) a short proxy trained from scratch,
  (b) a short proxy fine-tuned from a parent (the base trained once, as ``--parent-epochs``),
  (c) a long from-scratch run: the reference.

It prints the rank correlation (Kendall tau, Spearman) of (a) and (b) with (c), and the
compute each took, and writes every figure to a CSV. Run from the repository root:

    python benchmarks/proxy_fidelity.py                  # the figures in the README
    python benchmarks/proxy_fidelity.py --tiny           # a smoke run in a minute
    python benchmarks/proxy_fidelity.py --reuse benchmarks/results/proxy_fidelity.csv
        # re-measure (b) only, taking (a) and (c) from an earlier run with the same settings
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import ge_nas  # noqa: F401  (registers the GE layers)
from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.search.config import ProxySettings
from ge_nas.search.retraining import rank_correlation
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from ge_nas.yolo.inheritance import Inheritance, load_parent_state
from ge_nas.yolo.training import train_parent, train_proxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="yolov8n_small")
    parser.add_argument("--images", type=int, default=128, help="training images (validation: a quarter)")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--proxy-epochs", type=int, default=3, help="epochs of (a) and (b)")
    parser.add_argument("--parent-epochs", type=int, default=20, help="epochs of the parent of (b)")
    parser.add_argument("--long-epochs", type=int, default=24, help="epochs of the reference (c)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N architectures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/proxy_fidelity.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: 8 images at 64 px, 3 architectures")
    parser.add_argument(
        "--reuse", type=Path, help="take (a) and (c) from this earlier CSV (same settings) and re-measure (b) only"
    )
    args = parser.parse_args()
    if args.tiny:
        args.images, args.imgsz, args.proxy_epochs, args.parent_epochs, args.long_epochs, args.limit = 8, 64, 1, 1, 2, 3

    space = load_space(args.space)
    candidates = list(space.enumerate())[: args.limit or None]
    work = Path(tempfile.mkdtemp(prefix="ge-nas-fidelity-"))
    data = make_synthetic_dataset(
        work / "data", n_train=args.images, n_val=max(2, args.images // 4), imgsz=args.imgsz, seed=args.seed
    )
    settings = ProxySettings(epochs=args.proxy_epochs, imgsz=args.imgsz, batch=16, seed=args.seed)
    long_settings = ProxySettings(epochs=args.long_epochs, imgsz=args.imgsz, batch=16, seed=args.seed)

    start = time.perf_counter()
    base_yaml = generate_model_yaml(space, Candidate.baseline()).write(work / "parent" / "model.yaml")
    parent = load_parent_state(train_parent(base_yaml, data, settings, args.parent_epochs, work / "parent"))
    seconds = {"scratch": 0.0, "inherited": time.perf_counter() - start, "long": 0.0}

    reused = _reused_columns(args.reuse, _settings_line(args)) if args.reuse else {}
    rows = []
    for n, candidate in enumerate(candidates):
        generated = generate_model_yaml(space, candidate)
        model_yaml = generated.write(work / f"arch-{n:03d}" / "model.yaml")
        row = {"key": candidate.key, "code": candidate.code}
        for name, proxy, inheritance in (
            ("scratch", settings, None),
            ("inherited", settings, Inheritance(parent, generated.index_map)),
            ("long", long_settings, None),
        ):
            if name in reused.get(candidate.key, {}):
                row[name] = reused[candidate.key][name]
                continue
            t = time.perf_counter()
            history = train_proxy(model_yaml, data, proxy, work / f"arch-{n:03d}" / name, inheritance=inheritance)
            seconds[name] += time.perf_counter() - t
            row[name] = history[-1]["map50-95"]
        rows.append(row)
        print(f"{n + 1:>3}/{len(candidates)} {row['code']:<12} " + " ".join(f"{k} {row[k]:.4f}" for k in seconds))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        f.write(f"# {date.today()} {platform.machine()} {_settings_line(args)}\n")
        writer = csv.DictWriter(f, fieldnames=["key", "code", "scratch", "inherited", "long"])
        writer.writeheader()
        writer.writerows(rows)

    reference = [r["long"] for r in rows]
    print(f"\n{len(rows)} architectures of {args.space}; reference: {args.long_epochs} epochs from scratch")
    print(f"{'proxy':<36} {'Kendall tau':>11} {'Spearman':>9} {'compute':>9} {'vs reference':>13}")
    for name, label in (
        ("scratch", f"(a) {args.proxy_epochs} epochs from scratch"),
        ("inherited", f"(b) {args.proxy_epochs} epochs inherited (+parent)"),
    ):
        tau, rho = rank_correlation([r[name] for r in rows], reference)
        share = seconds[name] / seconds["long"] if seconds["long"] else math.nan
        print(f"{label:<36} {tau:>11.3f} {rho:>9.3f} {seconds[name]:>8.0f}s {share:>12.2f}x")
    print(f"{'(c) reference':<36} {'':>11} {'':>9} {seconds['long']:>8.0f}s {1:>12.2f}x")
    if reused:
        print(f"(a) and (c) were taken from {args.reuse}; their compute is that of this run (0 s when reused)")
    print(f"figures written to {args.out}")


def _settings_line(args: argparse.Namespace) -> str:
    return (
        f"space={args.space} images={args.images} imgsz={args.imgsz} proxy_epochs={args.proxy_epochs} "
        f"parent_epochs={args.parent_epochs} long_epochs={args.long_epochs} seed={args.seed}; metric map50-95"
    )


def _reused_columns(path: Path, settings: str) -> dict[str, dict[str, float]]:
    """Columns (a) and (c) of an earlier run, refused unless it used the same settings."""
    first, *lines = path.read_text().splitlines()
    if not first.endswith(settings):
        raise SystemExit(f"{path} was measured with other settings ({first}); run without --reuse")
    return {row["key"]: {"scratch": float(row["scratch"]), "long": float(row["long"])} for row in csv.DictReader(lines)}


if __name__ == "__main__":
    main()
