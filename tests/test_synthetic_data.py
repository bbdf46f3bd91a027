"""The built-in synthetic dataset: deterministic, valid YOLO format, sized by arguments."""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image

from ge_nas.data import CLASS_NAMES, make_synthetic_dataset


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
