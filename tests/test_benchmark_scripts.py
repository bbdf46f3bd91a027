"""The benchmark scripts run end to end at a tiny size and write their tables (figures: benchmarks/RESULTS.md)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def run_benchmark(script: str, *args: str) -> str:
    """Run ``benchmarks/<script> --tiny`` from the repository root and return what it printed."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--tiny", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def read_table(path: Path) -> tuple[str, list[dict[str, str]]]:
    """The settings line and the rows of a results CSV."""
    lines = path.read_text().splitlines()
    return lines[0], list(csv.DictReader(lines[1:]))


def test_overhead_benchmark_compares_a_trial_with_plain_ultralytics(tmp_path: Path) -> None:
    out = tmp_path / "overhead.csv"
    printed = run_benchmark("overhead.py", "--out", str(out))
    assert "wall time, whole trial" in printed and "peak resident memory" in printed
    settings, rows = read_table(out)
    assert settings.startswith("# ") and "core" in settings and "epochs=1" in settings
    assert sorted(r["run"] for r in rows) == ["ge-nas", "ultralytics"]
    assert all(float(r["train_s"]) > 0 and float(r["peak_rss_mib"]) > 100 for r in rows)


def test_ge_unit_benchmark_times_ours_against_timm_and_in_yolov8n(tmp_path: Path) -> None:
    units, model = tmp_path / "units.csv", tmp_path / "model.csv"
    printed = run_benchmark("ge_unit.py", "--out", str(units), "--model-out", str(model))
    assert "ours/timm over" in printed and "latency ratio over 6 single-unit models" in printed
    _, rows = read_table(units)
    compared = [r for r in rows if r["ratio"]]
    assert {r["variant"] for r in compared} == {"theta-minus", "theta", "theta-plus"}
    assert all(float(r["ratio"]) > 0 for r in compared)
    assert {r["reference"] for r in rows if r["variant"] != "theta-minus" and r["extent"] == "0"} == {
        "no timm equivalent (timm's global theta/theta-plus uses a map-sized kernel)"
    }
    _, latencies = read_table(model)
    assert len(latencies) == 6 and all(float(r["latency_ratio"]) > 0 for r in latencies)


def test_ground_truth_benchmark_tables_every_run_and_resumes_without_training_again(tmp_path: Path) -> None:
    out, work = tmp_path / "truth.csv", tmp_path / "work"
    printed = run_benchmark("ground_truth.py", "--dataset", "context", "--out", str(out), "--workdir", str(work))
    assert "premise" in printed and "truth: the reference, 2 seeds each" in printed
    settings, rows = read_table(out)
    assert "dataset=context" in settings and "space=yolov8n_p3" in settings and "parent_sha256=" in settings
    assert "mosaic=off" in settings  # the context data's cue is one per image: mosaics would mix four
    assert "reference=from_scratch_ultralytics_recipe" in settings and "reference_epochs=1" in settings
    assert rows[0]["key"] == "base" and len({r["key"] for r in rows}) == 3
    runs = {(r["key"], r["schedule"], r["seed_index"]) for r in rows}
    assert len(runs) == len(rows) == 3 * 2 * 2  # architectures x schedules x seeds, each once
    seed_0 = {(r["schedule"], r["seed"]) for r in rows if r["seed_index"] == "0"}
    assert seed_0 == {("proxy", "0"), ("reference", "1")}  # a search's with --seed 0; the truth's shares none
    assert all(float(r["gflops"]) > 0 and int(r["params"]) > 0 for r in rows)
    again = run_benchmark("ground_truth.py", "--dataset", "context", "--out", str(out), "--workdir", str(work))
    assert "12 runs already in" in again and read_table(out)[1] == rows
    summary = run_benchmark("ground_truth.py", "--dataset", "context", "--out", str(out), "--summary")
    assert "3 of 3 architectures so far" in summary and "premise" in summary
    assert (
        "proxy fidelity, seed 0 (what exploring trials see)" in summary and "3 architectures, truth over 2" in summary
    )


def test_ground_truth_shards_fill_one_table_each_run_once_after_the_parent(tmp_path: Path) -> None:
    out, work = tmp_path / "truth.csv", tmp_path / "work"
    shard = ("--dataset", "context", "--out", str(out), "--workdir", str(work), "--shard")
    early = subprocess.run(
        [sys.executable, "benchmarks/ground_truth.py", "--tiny", *shard, "1/2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert early.returncode != 0 and "the parent is not trained yet; start shard 0 first" in early.stderr
    assert not out.exists()
    first = run_benchmark("ground_truth.py", *shard, "0/2")
    assert "parent ready" in first
    _, half = read_table(out)
    assert len(half) == 6  # every other run of 3 architectures x (2 reference + 2 proxy seeds)
    run_benchmark("ground_truth.py", *shard, "1/2")
    _, rows = read_table(out)
    assert len({(r["key"], r["schedule"], r["seed_index"]) for r in rows}) == len(rows) == 12
    assert (half[0]["schedule"], half[0]["key"], half[0]["seed_index"]) == ("reference", "base", "0"), "truth first"


def test_ground_truth_benchmark_refuses_to_resume_a_table_made_with_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "truth.csv"
    out.write_text("# 2026-01-01 somewhere; versions; dataset=context epochs=99\nkey,code\n")
    result = subprocess.run(
        [sys.executable, "benchmarks/ground_truth.py", "--tiny", "--out", str(out), "--workdir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode != 0 and "was made with other settings" in result.stderr
    assert out.read_text().endswith("key,code\n")


def test_search_efficiency_benchmark_replays_searches_to_a_verdict(tmp_path: Path) -> None:
    out = tmp_path / "efficiency.csv"
    printed = run_benchmark("search_efficiency.py", "--out", str(out))
    assert "proxy fidelity, seed 0" in printed and "Kendall tau" in printed
    settings, rows = read_table(out)
    assert "table=made-up" in settings and "hv_reference=baseline_true_accuracy" in settings
    assert {r["sampler"] for r in rows} == {"tpe", "nsga2", "random", "gp", "grid"}
    assert {r["values"] for r in rows} == {"proxy", "reference"}
    assert {int(r["budget_trials"]) for r in rows} == {4, 16}
    grid_full = next(r for r in rows if r["sampler"] == "grid" and r["budget_trials"] == "16")
    # The exhaustive sampler sees the whole space, so all of the true front's hypervolume.
    assert float(grid_full["hv_mean"]) == 1.0
    # Every replay trains the baseline's 3 seeds and at least one more architecture.
    assert all(float(r["runs_mean"]) >= 4 for r in rows)


def test_search_efficiency_benchmark_asks_for_the_ground_truth_first(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/search_efficiency.py", "--table", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode != 0 and "run `python benchmarks/ground_truth.py" in result.stderr


def test_pruning_benchmark_compares_a_pruned_and_an_unpruned_search(tmp_path: Path) -> None:
    out = tmp_path / "pruning.csv"
    printed = run_benchmark("pruning.py", "--out", str(out), "--workdir", str(tmp_path / "work"))
    assert "epochs saved" in printed and "hypervolume kept" in printed
    settings, rows = read_table(out)
    assert "trials=2" in settings and "proxy_epochs=2" in settings
    assert {r["pruner"] for r in rows} == {"none", "pareto"}
    assert sum(int(r["epochs_trained"]) for r in rows if r["pruner"] == "none") > 0


def test_bookkeeping_benchmark_times_ranking_tables_and_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "bookkeeping.csv"
    printed = run_benchmark("bookkeeping.py", "--out", str(out))
    assert "growth 20 -> 100 trials" in printed
    _, rows = read_table(out)
    assert {int(r["trials"]) for r in rows} == {20, 100}
    assert {"rank", "refresh"} <= {r["step"] for r in rows}
    assert all(float(r["seconds"]) > 0 for r in rows)


def test_startup_benchmark_times_help_against_the_bare_interpreter(tmp_path: Path) -> None:
    out = tmp_path / "startup.csv"
    printed = run_benchmark("startup.py", "--out", str(out))
    assert "ge-nas --help / python -c pass:" in printed
    _, rows = read_table(out)
    assert {r["command"] for r in rows} == {"python -c pass", "ge-nas --help", "import torch, ultralytics"}
    assert all(float(r["seconds"]) > 0 for r in rows)


def test_costs_benchmark_checks_gflops_latency_noise_and_the_reranked_ground_truth(tmp_path: Path) -> None:
    printed = run_benchmark("costs.py", "--out", str(tmp_path))
    assert "counted and independent GFLOPs differ by at most" in printed and "front 1 counted:" in printed
    _, counts = read_table(tmp_path / "costs_gflops.csv")
    assert len(counts) == 5 and all(abs(float(r["rel_diff"])) < 0.01 for r in counts)
    theta_minus = next(r for r in counts if r["code"] == "15mg")
    assert float(theta_minus["ge_added"]) > 0 and theta_minus["ultralytics_gflops"] == counts[0]["gflops"]
    settings, latencies = read_table(tmp_path / "costs_latency.csv")
    assert "default_rounds=" in settings
    assert {r["backend"] for r in latencies} == {"torch", "onnxruntime"}
    assert all(float(r["low"]) <= float(r["ratio"]) <= float(r["high"]) for r in latencies)
    _, truth = read_table(tmp_path / "costs_ground_truth.csv")
    assert len(truth) == 3 and all(r["front"] for r in truth)


def test_supernet_benchmark_ranks_times_and_replays_both_strategies(tmp_path: Path) -> None:
    out = tmp_path / "supernet.csv"
    printed = run_benchmark("supernet.py", "--out", str(out), "--workdir", str(tmp_path / "work"))
    assert "Kendall tau against the truth" in printed and "architectures per CPU-hour" in printed
    settings, rows = read_table(out)
    assert "table=made-up" in settings and "supernet_epochs=1" in settings and "architectures=3" in settings
    taus = {r["strategy"]: float(r["value"]) for r in rows if r["metric"] == "kendall_tau"}
    assert {"proxy (one seed)", "supernet", "supernet minus proxy", "supernet seed 0"} <= set(taus)
    assert taus["supernet minus proxy"] == pytest.approx(taus["supernet"] - taus["proxy (one seed)"], abs=1e-5)
    assert all(-1 <= taus[name] <= 1 for name in ("proxy (one seed)", "supernet"))
    assert all(float(r["value"]) > 0 for r in rows if r["metric"] in ("architectures_per_cpu_hour", "score_cpu_s"))
    assert {(r["metric"], r["strategy"]) for r in rows if r["metric"] in ("hit_rate", "regret")} == {
        (metric, strategy) for metric in ("hit_rate", "regret") for strategy in ("proxy", "supernet")
    }
    _, architectures = read_table(out.with_name("supernet_architectures.csv"))
    assert architectures[0]["code"] == "base" and len(architectures) == 3
    assert all(r["supernet0"] != "" and float(r["gflops"]) > 0 for r in architectures)


def test_modules_benchmark_times_each_module_against_its_reference_and_checks_its_counts(tmp_path: Path) -> None:
    speed, counts = tmp_path / "speed.csv", tmp_path / "counts.csv"
    printed = run_benchmark("modules.py", "--out", str(speed), "--counts-out", str(counts))
    assert "ours/reference over 5 settings" in printed
    _, rows = read_table(speed)
    modules = ("se", "eca", "cbam", "coord", "simam")
    assert {(r["module"], r["pass"]) for r in rows} == {(m, p) for m in modules for p in ("forward", "fwd+bwd")}
    assert {r["module"]: r["reference"] for r in rows} == {
        "se": "timm SEModule",
        "eca": "timm EcaModule",
        "cbam": "timm CbamModule",
        "coord": "timm CoordAttn",
        "simam": "the paper's code",
    }
    assert all(float(r["ratio_low"]) <= float(r["ratio"]) <= float(r["ratio_high"]) for r in rows)
    _, counted = read_table(counts)
    assert {r["module"] for r in counted} == set(modules)
    assert all(r["counted_ops"] == r["independent_ops"] == r["formula_ops"] for r in counted)
    assert all(int(r["params"]) == int(r["paper_params"]) + int(r["extra_params"]) for r in counted)
