"""The built-in synthetic dataset: deterministic, valid YOLO format, sized by arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from ge_nas.data.synthetic import CLASS_NAMES, make_synthetic_dataset
from ge_nas.errors import InputError


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_files(tmp_path: Path) -> None:
    a = make_synthetic_dataset(tmp_path / "a", n_train=6, n_val=3, imgsz=64, seed=7).parent
    b = make_synthetic_dataset(tmp_path / "b", n_train=6, n_val=3, imgsz=64, seed=7).parent
    files_a, files_b = _snapshot(a), _snapshot(b)
    files_a.pop("data.yaml"), files_b.pop("data.yaml")  # holds the absolute path
    assert files_a == files_b


def test_another_seed_gives_other_images(tmp_path: Path) -> None:
    a = make_synthetic_dataset(tmp_path / "a", n_train=3, n_val=1, imgsz=64, seed=1).parent
    b = make_synthetic_dataset(tmp_path / "b", n_train=3, n_val=1, imgsz=64, seed=2).parent
    assert (a / "images/train/00000.png").read_bytes() != (b / "images/train/00000.png").read_bytes()


def test_layout_sizes_and_labels_follow_yolo_format(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=5, n_val=2, imgsz=96, seed=0)
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data["path"])
    assert data["names"] == dict(enumerate(CLASS_NAMES))
    assert len(list((root / data["train"]).glob("*.png"))) == 5
    assert len(list((root / data["val"]).glob("*.png"))) == 2
    for image_path in (root / "images/train").glob("*.png"):
        assert Image.open(image_path).size == (96, 96)
        rows = (root / "labels/train" / f"{image_path.stem}.txt").read_text().splitlines()
        assert rows, "every image holds at least one object"
        for row in rows:
            cls, *box = row.split()
            assert int(cls) in range(len(CLASS_NAMES))
            assert all(0.0 <= float(v) <= 1.0 for v in box)


def test_existing_dataset_with_same_arguments_is_reused(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64)
    first = data_yaml.stat().st_mtime_ns
    assert make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64).stat().st_mtime_ns == first
    make_synthetic_dataset(tmp_path / "d", n_train=3, n_val=1, imgsz=64)
    assert len(list((tmp_path / "d/images/train").glob("*.png"))) == 3


def test_a_dataset_of_ours_with_other_settings_is_replaced_with_ultralytics_caches(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64)
    (tmp_path / "d/labels/train.cache").write_bytes(b"written by ultralytics")
    make_synthetic_dataset(tmp_path / "d", n_train=3, n_val=1, imgsz=64)
    assert len(list((tmp_path / "d/images/train").glob("*.png"))) == 3
    assert not (tmp_path / "d/labels/train.cache").exists()
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")]


def test_a_folder_holding_other_files_is_refused_and_left_untouched(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "search.db").write_bytes(b"a user's study")
    (tmp_path / "notes.txt").write_text("keep me")
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match=r"holds files ge-nas did not make \(notes.txt, studies\)"):
        make_synthetic_dataset(tmp_path, n_train=2, n_val=1, imgsz=64)
    assert _snapshot(tmp_path) == before


def test_a_users_own_yolo_dataset_is_not_replaced(tmp_path: Path) -> None:
    """Same layout as ours (images/, labels/, data.yaml) but no ge-nas manifest: not ours to delete."""
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train" / "photo.jpg").write_bytes(b"jpeg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: {0: cat}\n")
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match="was not made by ge-nas"):
        make_synthetic_dataset(tmp_path, n_train=2, n_val=1, imgsz=64)
    assert _snapshot(tmp_path) == before


def test_an_empty_folder_is_filled_in_place(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path, n_train=2, n_val=1, imgsz=64)
    assert data_yaml == tmp_path / "data.yaml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.yaml", "ge_nas_dataset.json", "images", "labels"]


def test_a_file_is_refused_as_output(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    target.write_text("not a folder")
    with pytest.raises(InputError, match="is a file"):
        make_synthetic_dataset(target, n_train=2, n_val=1, imgsz=64)
    with pytest.raises(InputError, match="is a file"):
        make_synthetic_dataset(target / "under", n_train=2, n_val=1, imgsz=64)
    assert target.read_text() == "not a folder"


def test_ge_nas_dataset_output_onto_a_project_folder_exits_2_and_deletes_nothing(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "search.db").write_bytes(b"a user's study")
    before = _snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "ge_nas", "dataset", "-o", ".", "--train-images", "2", "--val-images", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "holds files ge-nas did not make (studies)" in result.stderr
    assert _snapshot(tmp_path) == before
