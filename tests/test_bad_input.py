"""Bad input: one line naming the problem and the fix, exit status 2, and the stored study untouched."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ultralytics
import yaml
from ultralytics import YOLO

from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import SearchFailed, run_search
from ge_nas.space.search_space import load_space
from tests.conftest import CommandResult


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
    _write_broken_datasets(folder, tiny_dataset)
    _write_broken_spaces(folder)
    YOLO("yolov8s.yaml").save(folder / "yolov8s.pt")  # a real checkpoint of another scale than the spaces' base
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


def _dataset_copy(folder: Path, tiny_dataset: Path, name: str, **entries: object) -> Path:
    """A copy of the tiny dataset under ``folder/name``, its YAML with ``entries`` changed (None drops one)."""
    root = folder / name
    shutil.copytree(tiny_dataset.parent, root)
    data = {**yaml.safe_load(tiny_dataset.read_text()), "path": str(root), **entries}
    (root / "data.yaml").write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    return root


def _write_broken_datasets(folder: Path, tiny_dataset: Path) -> None:
    """One dataset per class of fault that Ultralytics meets only when it trains."""
    _dataset_copy(folder, tiny_dataset, "no_names", names=None)
    _dataset_copy(folder, tiny_dataset, "train_not_a_path", train=5)
    _dataset_copy(folder, tiny_dataset, "path_not_a_path", path=["a", "b"])
    root = _dataset_copy(folder, tiny_dataset, "class_too_high")
    (root / "labels" / "train" / "00003.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    root = _dataset_copy(folder, tiny_dataset, "garbage_label")
    (root / "labels" / "val" / "00001.txt").write_text("square at the top\n")
    root = _dataset_copy(folder, tiny_dataset, "val_without_images")
    for image in (root / "images" / "val").iterdir():
        image.rename(image.with_suffix(".txt"))
    root = _dataset_copy(folder, tiny_dataset, "corrupt_images")
    for image in (root / "images" / "train").iterdir():
        image.write_bytes(b"not a png")
    # path: relative to the YAML's folder, where Ultralytics does not look (it reads it from the current folder).
    root = _dataset_copy(folder, tiny_dataset, "relative_path")
    (root / "data.yaml").write_text(
        yaml.safe_dump({**yaml.safe_load((root / "data.yaml").read_text()), "path": "images/.."})
    )


def _write_broken_spaces(folder: Path) -> None:
    """Space files and base model YAMLs that are valid YAML but must not be taken as they are."""
    levels = "\n".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 8))
    (folder / "alias_bomb.yaml").write_text(f"base: yolov8n.yaml\nl0: &l0 [lol, lol, lol]\n{levels}\npoints: *l7\n")
    base = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/v8/yolov8.yaml").read_text())
    (folder / "eval_base.yaml").write_text(yaml.safe_dump({**base, "activation": "nn.Linear(60000, 60000)"}))
    rows = [list(row) for row in base["backbone"]]
    rows[-1][3] = [1024, "five"]  # the SPPF's kernel size as a word
    (folder / "word_base.yaml").write_text(yaml.safe_dump({**base, "backbone": rows}))
    for name in ("eval_base", "word_base"):
        (folder / f"{name}_space.yaml").write_text(f"base: {name}.yaml\npoints: [sppf]\n")


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
        "--parent-epochs": "0",  # as the study was made (through the API, without a parent)
        **changes,
    }
    return ["search", *(item for pair in options.items() for item in pair)]


def fingerprint(folder: Path) -> dict[str, str]:
    """Hashes of the study database and its write-ahead log: what 'unchanged' means."""
    files = [*folder.glob("studies/*.db"), *folder.glob("studies/*.db-wal")]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


SEARCH_CASES = {
    # datasets: everything Ultralytics would meet only when it trains
    "dataset missing": ({"--dataset": "{p}/nope.yaml"}, "no such file; give the path to an Ultralytics dataset YAML"),
    "dataset without classes": ({"--dataset": "{p}/no_names/data.yaml"}, "names no classes; add 'names:"),
    "dataset split not a path": ({"--dataset": "{p}/train_not_a_path/data.yaml"}, "'train' is 5; give a folder"),
    "dataset root not a path": ({"--dataset": "{p}/path_not_a_path/data.yaml"}, "'path' is ['a', 'b']; give the"),
    "label class >= nc": (
        {"--dataset": "{p}/class_too_high/data.yaml"},
        "line 1 has class 7, but the dataset names 3",
    ),
    "label garbage": ({"--dataset": "{p}/garbage_label/data.yaml"}, "00001.txt line 1 is not 'class x y w h'"),
    "val without images": ({"--dataset": "{p}/val_without_images/data.yaml"}, "holds no images; add images"),
    "every image corrupt": ({"--dataset": "{p}/corrupt_images/data.yaml"}, "train images can be read"),
    "relative path": (
        {"--dataset": "{p}/relative_path/data.yaml"},
        "a relative 'path:' is read from the current folder",
    ),
    # options: each checked before the study is created or changed
    "seed below 0": ({"--seed": "-1"}, "--seed -1: use a whole number from 0 to 4294967295"),
    "seed above 2^32-1": ({"--seed": "4294967296"}, "--seed 4294967296: use a whole number from 0"),
    "max gflops nan": ({"--max-gflops": "nan"}, "--max-gflops nan: a budget is a positive number"),
    "max gflops negative": ({"--max-gflops": "-1"}, "--max-gflops -1: a budget is a positive number"),
    "max params infinite": ({"--max-params": "inf"}, "--max-params inf: a budget is a positive number"),
    "image size not a multiple of 32": (
        {"--imgsz": "100"},
        "--imgsz 100: use a multiple of 32, the base model's",
    ),
    "device mps without it": ({"--device": "mps"}, "--device mps: this machine has no Apple GPU"),
    "weights not a checkpoint": ({"--weights": "{p}/space.yaml"}, "space.yaml: not an Ultralytics checkpoint"),
    "weights of another model": ({"--weights": "{p}/yolov8s.pt"}, "the checkpoint is a yolov8s model, not the space's"),
    # spaces and base models that are valid YAML
    "space alias bomb": ({"--space": "{p}/alias_bomb.yaml"}, "expand to more than 100,000 values (an alias bomb?)"),
    "base activation with arguments": ({"--space": "{p}/eval_base_space.yaml"}, "activation 'nn.Linear(60000, 60000)'"),
    "base row with a word for a number": ({"--space": "{p}/word_base_space.yaml"}, "word_base.yaml' cannot be built"),
    # storage URLs: one line, and no part of a password
    "password holding @ and :": (
        {"--storage": "postgresql://admin:s3cr@t:s3cret@dbhost:5432/genas"},
        "--storage postgresql://*** is not a database URL",
    ),
    "port not a number": ({"--storage": "postgresql://nas:s3cret@127.0.0.1:notaport/x"}, "is not a database URL"),
    "sqlite in memory": ({"--storage": "sqlite://"}, "is an in-memory database: every result would be lost"),
    "sqlite with credentials": ({"--storage": "sqlite://nas:s3cret@/x.db"}, "takes no user, password or host"),
    "read-only database": (
        {"--storage": "sqlite:///file:{p}/studies/kept.db?mode=ro&uri=true"},
        "is read-only, and a search writes every trial there",
    ),
    "dataset unreadable": ({"--dataset": "{p}/not_yaml.yaml"}, "not_yaml.yaml: not valid YAML at line 2"),
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


def assert_one_clear_line(result: subprocess.CompletedProcess[str] | CommandResult, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize(("changes", "fragment"), SEARCH_CASES.values(), ids=SEARCH_CASES.keys())
def test_bad_search_input_is_one_line_exit_2_and_changes_nothing(
    project: Path, tiny_dataset: Path, changes: dict[str, str], fragment: str, ge_nas_in_process: Callable[..., Any]
) -> None:
    before = fingerprint(project)
    changes = {k: v.format(p=project) for k, v in changes.items()}
    assert_one_clear_line(ge_nas_in_process(*search_args(project, tiny_dataset, **changes), cwd=project), fragment)
    assert fingerprint(project) == before
    assert not (project / "runs").exists()


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


@pytest.fixture(scope="module")
def failed_study(unlearnable_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study whose every trial failed (made through the Python API, which checks no dataset)."""
    folder = tmp_path_factory.mktemp("failed")
    config = SearchConfig(
        space=load_space("yolov8n_small"),
        data_yaml=unlearnable_dataset,
        objectives=Objectives("map50-95", ("gflops",)),
        proxy=ProxySettings(epochs=1, imgsz=64, batch=8),
        trials=2,
        study_name="failed",
        storage_url=f"sqlite:///{folder / 'studies' / 'failed.db'}",
        workdir=folder / "work",
        max_failures=1,
    )
    with pytest.raises(SearchFailed):
        run_search(config)
    return folder


KEPT = ["--study", "kept", "--storage", "sqlite:///{p}/studies/kept.db"]
RESULT_CASES = {
    "export onto a folder": (["export", *KEPT, "-o", "{p}"], "is a folder; give a file name"),
    "export under a file": (["export", *KEPT, "-o", "{p}/a_file/best.yaml"], "a_file is a file, not a folder"),
    "export pick with a superscript digit": (["export", *KEPT, "--pick", "²", "-o", "{p}/x.yaml"], "use one of knee"),
    "dashboard onto a folder": (["dashboard", *KEPT, "-o", "{p}"], "is a folder; give a file name"),
    "space samples into a file": (["space", "yolov8n_small", "--sample", "1", "-o", "{p}/a_file"], "is a file; give a"),
    "dataset into a file": (["dataset", "-o", "{p}/a_file", "--train-images", "1"], "is a file; give -o a new or"),
    "show with sqlite credentials": (
        ["show", "--study", "kept", "--storage", "sqlite://nas:s3cret@/{p}/studies/kept.db"],
        "takes no user, password or host",
    ),
    "show with a password holding @": (
        ["show", "--study", "kept", "--storage", "postgresql://nas:s3c@s3cret@127.0.0.1/x"],
        "is not a database URL",
    ),
}


@pytest.mark.parametrize(("args", "fragment"), RESULT_CASES.values(), ids=RESULT_CASES.keys())
def test_bad_output_paths_and_picks_are_one_line_exit_2(
    project: Path, args: list[str], fragment: str, ge_nas_in_process: Callable[..., Any]
) -> None:
    before = fingerprint(project)
    result = ge_nas_in_process(*(a.format(p=project) for a in args), cwd=project)
    assert_one_clear_line(result, fragment)
    assert fingerprint(project) == before
    assert (project / "a_file").read_text() == "not a folder"


def test_retrain_of_a_study_whose_trials_all_failed_is_refused_and_writes_nothing(
    failed_study: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    before = fingerprint(failed_study)
    args = ["retrain", "--study", "failed", "--storage", f"sqlite:///{failed_study / 'studies' / 'failed.db'}"]
    result = ge_nas_in_process(*args, "--epochs", "1", cwd=failed_study)
    assert_one_clear_line(result, "has no trained architecture to retrain")
    assert fingerprint(failed_study) == before


def test_list_names_an_unreadable_database_and_lists_the_others(
    project: Path, tmp_path: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    (tmp_path / "studies").mkdir()
    shutil.copy(project / "studies" / "kept.db", tmp_path / "studies" / "kept.db")
    (tmp_path / "studies" / "broken.db").write_bytes(b"not a database at all")
    result = ge_nas_in_process("list", cwd=tmp_path)
    assert result.returncode == 0
    assert "kept" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("not listed: sqlite:///studies/broken.db: ")


def test_export_onto_an_existing_file_says_it_replaced_it(
    project: Path, tmp_path: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    target = tmp_path / "best.yaml"
    target.write_text("an older export")
    result = ge_nas_in_process("export", *(a.format(p=project) for a in KEPT), "-o", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"replaced {target}: trial 0 (base)")
    assert target.read_text().startswith("# Generated by ge-nas")
