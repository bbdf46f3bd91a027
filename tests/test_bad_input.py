"""Bad input: one line naming the problem and the fix, exit status 2, and the stored study untouched."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import run_search
from ge_nas.space.search_space import load_space


@pytest.fixture(scope="module")
def project(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a finished one-trial study, the files the cases need, and broken variants of them."""
    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "space.yaml").write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta]\nextents: [global]\n")
    (folder / "other_space.yaml").write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus]\n")
    (folder / "bad_space.yaml").write_text("base: yolov8n.yaml\nextents: [5]\n")
    (folder / "not_yaml.yaml").write_text("train: [images\n  val: :\n")
    (folder / "no_val.yaml").write_text("path: .\ntrain: images\nnames: {0: a}\n")
    (folder / "empty").mkdir()
    (folder / "empty_folder.yaml").write_text(f"path: {folder}\ntrain: empty\nval: empty\nnames: {{0: a}}\n")
    (folder / "missing_folder.yaml").write_text(f"path: {folder}\ntrain: nowhere\nval: nowhere\nnames: {{0: a}}\n")
    (folder / "a_file").write_text("not a folder")
    run_search(
        SearchConfig(
            space=load_space(folder / "space.yaml"),
            data_yaml=tiny_dataset,
            objectives=Objectives("map50-95", ("gflops",)),
            proxy=ProxySettings(epochs=1, imgsz=64, batch=8),
            trials=1,
            study_name="kept",
            storage_url=f"sqlite:///{folder / 'studies' / 'kept.db'}",
            workdir=folder / "work",
        )
    )
    return folder


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on loopback that accepts connections and never says a word (a hung database server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def search_args(project: Path, tiny_dataset: Path, **changes: str) -> list[str]:
    options = {
        "--dataset": str(tiny_dataset),
        "--space": str(project / "space.yaml"),
        "--study": "kept",
        "--storage": f"sqlite:///{project / 'studies' / 'kept.db'}",
        "--epochs": "1",
        "--imgsz": "64",
        "--batch": "8",
        "--trials": "2",
        **changes,
    }
    return ["search", *(item for pair in options.items() for item in pair)]


def fingerprint(folder: Path) -> dict[str, str]:
    """Hashes of the study database and its write-ahead log: what 'unchanged' means."""
    files = [*folder.glob("studies/*.db"), *folder.glob("studies/*.db-wal")]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


SEARCH_CASES = {
    "dataset missing": ({"--dataset": "{p}/nope.yaml"}, "no such file; give the path to an Ultralytics dataset YAML"),
    "dataset unreadable": ({"--dataset": "{p}/not_yaml.yaml"}, "cannot be read as YAML"),
    "dataset without val": ({"--dataset": "{p}/no_val.yaml"}, "needs 'train' and 'val' entries"),
    "dataset folder empty": ({"--dataset": "{p}/empty_folder.yaml"}, "is empty; add images"),
    "dataset folder missing": ({"--dataset": "{p}/missing_folder.yaml"}, "does not exist; fix 'train'"),
    "invalid space": ({"--space": "{p}/bad_space.yaml"}, "key 'extents': extent 5 is not allowed"),
    "unknown device": ({"--device": "3"}, "--device '3': GPU 3 not found"),
    "zero epochs": ({"--epochs": "0"}, "Invalid value for '--epochs'"),
    "zero trials": ({"--trials": "0"}, "Invalid value for '--trials'"),
    "negative batch": ({"--batch": "-4"}, "Invalid value for '--batch'"),
    "zero image size": ({"--imgsz": "0"}, "Invalid value for '--imgsz'"),
    "unparsable storage URL": ({"--storage": "not a url"}, "is not a database URL: use e.g. sqlite:///"),
    "refused server": ({"--storage": "postgresql://nas:s3cret@127.0.0.1:1/x"}, "cannot open the database at"),
    "other objectives": ({"--objectives": "map50,gflops"}, "was created with objectives = ['map50-95', 'gflops']"),
    "other space": ({"--space": "{p}/other_space.yaml"}, "was created with space = "),
    "unwritable study folder": ({"--storage": "sqlite:///{p}/a_file/x.db"}, "cannot create the study folder"),
}


def run_ge_nas(project: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ge_nas", *args], capture_output=True, text=True, cwd=project, timeout=120
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize(("changes", "fragment"), SEARCH_CASES.values(), ids=SEARCH_CASES.keys())
def test_bad_search_input_is_one_line_exit_2_and_changes_nothing(
    project: Path, tiny_dataset: Path, changes: dict[str, str], fragment: str
) -> None:
    before = fingerprint(project)
    changes = {k: v.format(p=project) for k, v in changes.items()}
    assert_one_clear_line(run_ge_nas(project, search_args(project, tiny_dataset, **changes)), fragment)
    assert fingerprint(project) == before


@pytest.mark.parametrize(
    "args",
    [
        ["show", "--study", "ghost", "--storage", "sqlite:///{p}/studies/kept.db"],
        ["export", "--study", "ghost", "--storage", "sqlite:///{p}/studies/kept.db", "-o", "{p}/best.yaml"],
        ["retrain", "--study", "ghost", "--storage", "sqlite:///{p}/studies/kept.db", "--epochs", "2"],
        ["dashboard", "--study", "ghost", "--storage", "sqlite:///{p}/studies/kept.db", "-o", "{p}/report.html"],
    ],
    ids=["show", "export", "retrain", "dashboard"],
)
def test_commands_on_a_study_that_does_not_exist_name_the_studies_there(project: Path, args: list[str]) -> None:
    before = fingerprint(project)
    result = run_ge_nas(project, [a.format(p=project) for a in args])
    assert_one_clear_line(result, "study 'ghost' not found")
    assert "kept" in result.stderr
    assert fingerprint(project) == before


def test_a_server_that_never_answers_fails_within_seconds(project: Path, silent_server: int) -> None:
    start = time.monotonic()
    result = run_ge_nas(
        project, ["show", "--study", "x", "--storage", f"postgresql://nas:s3cret@127.0.0.1:{silent_server}/x"]
    )
    assert time.monotonic() - start < 60
    assert_one_clear_line(result, "127.0.0.1")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("activation: \"__import__('os').system('touch pwned')\"", "is not a torch.nn layer"),
        ("activation: \"nn.SiLU(__import__('os'))\"", "is not a torch.nn layer"),
    ],
)
def test_a_model_yaml_carrying_code_is_refused_before_ultralytics_evaluates_it(
    project: Path, tiny_dataset: Path, line: str, fragment: str
) -> None:
    exported = project / "evil.yaml"
    exported.write_text(f"{line}\nnc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [[0], 1, Detect, [nc]]\n")
    result = run_ge_nas(project, ["train", str(exported), "--data", str(tiny_dataset), "--epochs", "1"])
    assert_one_clear_line(result, fragment)
    assert not (project / "pwned").exists()


def test_a_model_yaml_naming_an_unknown_layer_is_refused(project: Path, tiny_dataset: Path) -> None:
    exported = project / "unknown.yaml"
    exported.write_text("nc: 3\nbackbone:\n  - [-1, 1, os.system, [16]]\nhead:\n  - [[0], 1, Detect, [nc]]\n")
    result = run_ge_nas(project, ["train", str(exported), "--data", str(tiny_dataset), "--epochs", "1"])
    assert_one_clear_line(result, "backbone[0] names 'os.system', which is not an allowed layer")
