"""The ge-nas command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ge_nas


def ge_nas_cmd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ge_nas", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_commands() -> None:
    result = ge_nas_cmd("--help")
    assert result.returncode == 0
    assert "dataset" in result.stdout


def test_version_prints_package_version() -> None:
    result = ge_nas_cmd("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ge-nas {ge_nas.__version__}"


def test_dataset_command_writes_yolo_dataset(tmp_path: Path) -> None:
    result = ge_nas_cmd("dataset", "-o", str(tmp_path / "d"), "--train-images", "2", "--val-images", "1")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / "d" / "data.yaml"
    assert len(list((tmp_path / "d/images/train").glob("*.png"))) == 2


def test_bad_option_value_exits_2() -> None:
    result = ge_nas_cmd("dataset", "--imgsz", "8")
    assert result.returncode == 2
    assert "--imgsz" in result.stderr
