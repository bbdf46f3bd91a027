"""What the layout promises: old studies read as before, one front everywhere, and a quick start."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from ge_nas.report.study_view import read_study
from tests.conftest import ASSETS, TINY_STUDY

PREVIOUS = ASSETS / "previous_version"
PREVIOUS_STUDY = "previous-version"
PREVIOUS_URL = f"sqlite:///{PREVIOUS_STUDY}.db"  # relative: the stored outputs name it so


def ge_nas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ge_nas", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def previous_study(tmp_path: Path) -> Path:
    """A copy of the study that ge-nas 0.1.0 wrote (tests/assets/previous_version/README.md says how)."""
    shutil.copy(PREVIOUS / f"{PREVIOUS_STUDY}.db", tmp_path)
    return tmp_path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_study_of_the_previous_version_shows_as_it_did(previous_study: Path) -> None:
    before = sha256(previous_study / f"{PREVIOUS_STUDY}.db")
    as_json = ge_nas(previous_study, "show", "--study", PREVIOUS_STUDY, "--storage", PREVIOUS_URL, "--format", "json")
    as_table = ge_nas(previous_study, "show", "--study", PREVIOUS_STUDY, "--storage", PREVIOUS_URL)
    assert as_json.returncode == 0 and as_table.returncode == 0, as_json.stderr + as_table.stderr
    # Every column it printed, with the same values; the columns added since read null or one seed.
    then = json.loads((PREVIOUS / "show.json").read_text())
    now = json.loads(as_json.stdout)
    assert [{key: row[key] for key in old} for row, old in zip(now, then, strict=True)] == then
    assert all(
        row[column] is None for row in now for column in ("latency_ratio_low", "latency_ratio_high", "memory_mb")
    )
    assert all(row["seeds"] == (1 if row["state"] == "complete" else 0) for row in now)  # one seed each, then
    headline, *rows = (PREVIOUS / "show.txt").read_text().splitlines()
    shown = as_table.stdout.splitlines()
    assert shown[0] == headline
    assert [line.split()[:2] for line in shown[2:-1]] == [line.split()[:2] for line in rows[1:]]  # rows, in order
    assert shown[-1].startswith("verdict: no architecture beats the baseline beyond the seed noise (the baseline has")
    assert sha256(previous_study / f"{PREVIOUS_STUDY}.db") == before  # reading writes nothing


@pytest.mark.parametrize(("how", "expected"), [(["--pick", "knee"], "knee.yaml"), (["--trial", "6"], "trial6.yaml")])
def test_a_study_of_the_previous_version_exports_the_same_yaml(
    previous_study: Path, how: list[str], expected: str
) -> None:
    result = ge_nas(
        previous_study, "export", "--study", PREVIOUS_STUDY, "--storage", PREVIOUS_URL, *how, "-o", expected
    )
    assert result.returncode == 0, result.stderr
    assert (previous_study / expected).read_text() == (PREVIOUS / expected).read_text()


def front_everywhere(cwd: Path, study_name: str, db: Path) -> tuple[list[int], list[int], list[int]]:
    """Front 1 as ``ge-nas show --format json`` lists it, as the SQL table holds it, and as the dashboard draws it."""
    url = f"sqlite:///{db}"
    shown = ge_nas(cwd, "show", "--study", study_name, "--storage", url, "--format", "json", "--front", "1")
    assert shown.returncode == 0, shown.stderr
    with sqlite3.connect(db) as connection:
        stored = connection.execute(
            "select trial_number from ge_nas_architectures where study_name = ? and front = 1", (study_name,)
        ).fetchall()
    drawn = read_study(optuna.load_study(study_name=study_name, storage=url), url).front
    return (
        sorted(row["trial_number"] for row in json.loads(shown.stdout)),
        sorted(number for (number,) in stored),
        sorted(e.number for e in drawn),
    )


def test_show_the_tables_and_the_dashboard_list_one_front_for_a_previous_study(previous_study: Path) -> None:
    """The ge_nas_* tables of that file were written by the previous version's own search."""
    shown, stored, drawn = front_everywhere(previous_study, PREVIOUS_STUDY, previous_study / f"{PREVIOUS_STUDY}.db")
    assert shown == stored == drawn == [0, 7]


def test_show_the_tables_and_the_dashboard_list_one_front_for_a_new_study(tiny_search: Path, tmp_path: Path) -> None:
    shown, stored, drawn = front_everywhere(tmp_path, TINY_STUDY, tiny_search)
    assert shown == stored == drawn and shown


def modules_loaded_by(*args: str, cwd: Path) -> list[str]:
    """Run ``ge-nas ARGS`` in this interpreter's way and list which heavy libraries it imported."""
    script = (
        "import sys\n"
        "from ge_nas.cli import main\n"
        f"sys.argv = ['ge-nas', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print([m for m in ('torch', 'ultralytics', 'cv2') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.mark.parametrize(
    "command",
    [["--help"], ["list"], ["show", "--study", PREVIOUS_STUDY, "--storage", PREVIOUS_URL]],
    ids=["help", "list", "show"],
)
def test_reading_commands_start_without_torch_or_ultralytics(previous_study: Path, command: list[str]) -> None:
    assert modules_loaded_by(*command, cwd=previous_study) == []


@pytest.mark.parametrize("order", ["ge_nas first", "ultralytics first"])
def test_importing_ge_nas_registers_its_layers_with_ultralytics_in_either_order(order: str) -> None:
    imports = ["import ge_nas", "from ultralytics import YOLO"]
    script = "\n".join(
        [
            *(imports if order == "ge_nas first" else reversed(imports)),
            f"model = YOLO({str(ASSETS / 'yolov8n_ge_by_hand.yaml')!r})",
            "print(type(model.model.model[16]).__name__)",
        ]
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "GatherExcite"
