"""The built-in synthetic datasets (shapes and context): deterministic, valid YOLO format, sized by arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ge_nas.data import context
from ge_nas.data.shapes import CLASS_NAMES
from ge_nas.data.synthetic import make_synthetic_dataset
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


# --- the context kind: the class is set by a cue far from the object ---


def test_context_dataset_is_deterministic_and_differs_from_shapes(tmp_path: Path) -> None:
    a = make_synthetic_dataset(tmp_path / "a", n_train=6, n_val=3, imgsz=64, seed=7, kind="context").parent
    b = make_synthetic_dataset(tmp_path / "b", n_train=6, n_val=3, imgsz=64, seed=7, kind="context").parent
    shapes = make_synthetic_dataset(tmp_path / "s", n_train=6, n_val=3, imgsz=64, seed=7).parent
    files_a, files_b = _snapshot(a), _snapshot(b)
    files_a.pop("data.yaml"), files_b.pop("data.yaml")
    assert files_a == files_b
    assert (a / "images/train/00000.png").read_bytes() != (shapes / "images/train/00000.png").read_bytes()


def test_context_layout_labels_and_class_names(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=12, n_val=2, imgsz=128, seed=0, kind="context")
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data["path"])
    assert data["names"] == dict(enumerate(context.CLASS_NAMES))
    assert len(list((root / data["train"]).glob("*.png"))) == 12
    inner = context.margin(128) / 128
    for image_path in (root / "images/train").glob("*.png"):
        assert Image.open(image_path).size == (128, 128)
        rows = [row.split() for row in (root / "labels/train" / f"{image_path.stem}.txt").read_text().splitlines()]
        assert rows, "every image holds at least one object"
        assert len({cls for cls, *_ in rows}) == 1, "every object of an image has the image's class"
        for _, cx, cy, w, h in rows:
            x, y, w, h = float(cx), float(cy), float(w), float(h)
            # Every box keeps the margin: the frame is never within the object's own neighbourhood.
            assert min(x - w / 2, y - h / 2) >= inner - 1e-6 and max(x + w / 2, y + h / 2) <= 1 - inner + 1e-6


def test_the_frame_colour_is_the_class_and_the_object_itself_is_grey(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=24, n_val=2, imgsz=96, seed=3, kind="context")
    root = data_yaml.parent
    for image_path in (root / "images/train").glob("*.png"):
        pixels = np.asarray(Image.open(image_path)).astype(int)
        rows = [row.split() for row in (root / "labels/train" / f"{image_path.stem}.txt").read_text().splitlines()]
        frame = pixels[: context.frame_width(96)].reshape(-1, 3).mean(axis=0)
        nearest = int(np.argmin(np.abs(context.CUE_COLOURS - frame).sum(axis=1)))
        assert all(int(cls) == nearest for cls, *_ in rows)
        _, cx, cy, *_ = rows[0]
        centre = pixels[round(float(cy) * 96), round(float(cx) * 96)]
        assert centre.max() - centre.min() <= 16, "an object is grey: its colour carries no class"


def test_one_scene_with_another_frame_is_another_class_with_identical_objects() -> None:
    """The far cue alone decides: the same draws with two classes differ in the frame and the class only."""
    red, red_labels = context.draw_framed_scene(np.random.default_rng(11), 128, 3, cls=0)
    blue, blue_labels = context.draw_framed_scene(np.random.default_rng(11), 128, 3, cls=2)
    width = context.frame_width(128)
    inside = (slice(width, 128 - width), slice(width, 128 - width))
    assert np.array_equal(np.asarray(red)[inside], np.asarray(blue)[inside])
    assert not np.array_equal(np.asarray(red)[:width], np.asarray(blue)[:width])
    assert [row.split()[1:] for row in red_labels] == [row.split()[1:] for row in blue_labels]
    assert {row.split()[0] for row in red_labels} == {"0"} and {row.split()[0] for row in blue_labels} == {"2"}


def test_clutter_shows_every_cue_colour_whatever_the_class(tmp_path: Path) -> None:
    """Small blobs in all three frame colours are scattered inside the frame, so no local colour tells the class."""
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=30, n_val=2, imgsz=128, seed=0, kind="context")
    root = data_yaml.parent
    seen: dict[int, set[int]] = {}
    width = context.frame_width(128)
    for image_path in (root / "images/train").glob("*.png"):
        cls = int((root / "labels/train" / f"{image_path.stem}.txt").read_text().split()[0])
        pixels = np.asarray(Image.open(image_path)).astype(int)[width + 2 : -width - 2, width + 2 : -width - 2]
        distance = np.abs(pixels[:, :, np.newaxis, :] - context.CUE_COLOURS[np.newaxis, np.newaxis]).sum(axis=-1)
        colours = {int(k) for k in range(3) if (distance[:, :, k] < 60).sum() >= 4}
        seen.setdefault(cls, set()).update(colours)
    assert set(seen) == {0, 1, 2}
    assert all(colours == {0, 1, 2} for colours in seen.values())


def test_a_folder_of_one_kind_is_not_reused_as_the_other(tmp_path: Path) -> None:
    shapes = make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64)
    assert yaml.safe_load(shapes.read_text())["names"][0] == "circle"
    framed = make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64, kind="context")
    assert yaml.safe_load(framed.read_text())["names"] == dict(enumerate(context.CLASS_NAMES))
    assert '"kind": "context"' in (tmp_path / "d/ge_nas_dataset.json").read_text()


def test_an_unknown_kind_is_refused_naming_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="use one of shapes, context"):
        make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64, kind="faces")
    assert not (tmp_path / "d").exists()


def test_ge_nas_dataset_kind_context_writes_the_context_classes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ge_nas", "dataset", "-o", "ctx", "--kind", "context", "--train-images", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((tmp_path / "ctx/data.yaml").read_text())["names"][0] == "red-frame"
