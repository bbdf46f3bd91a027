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


def _band_side(pixels: np.ndarray) -> tuple[int, int]:
    """The side whose quarter strip is one cue colour throughout, and that colour's class, read off the image."""
    imgsz = pixels.shape[0]
    for side in range(len(context.SIDES)):
        x0, y0, x1, y1 = context.band_box(side, imgsz)
        strip = pixels[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3)
        distance = np.abs(strip[:, np.newaxis, :] - context.CUE_COLOURS[np.newaxis]).sum(axis=-1)
        nearest = distance.argmin(axis=1)
        # The band's colour covers its strip except where clutter blobs lie on it.
        if (distance.min(axis=1) < 80).mean() > 0.8 and (nearest == np.bincount(nearest).argmax()).mean() > 0.8:
            return side, int(np.bincount(nearest).argmax())
    raise AssertionError("no band found")


def test_context_layout_labels_and_class_names(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=24, n_val=2, imgsz=128, seed=0, kind="context")
    data = yaml.safe_load(data_yaml.read_text())
    root = Path(data["path"])
    assert data["names"] == dict(enumerate(context.CLASS_NAMES))
    assert len(list((root / data["train"]).glob("*.png"))) == 24
    sides = set()
    for image_path in (root / "images/train").glob("*.png"):
        pixels = np.asarray(Image.open(image_path)).astype(int)
        assert pixels.shape == (128, 128, 3)
        side, _ = _band_side(pixels)
        sides.add(context.SIDES[side])
        rows = [row.split() for row in (root / "labels/train" / f"{image_path.stem}.txt").read_text().splitlines()]
        assert rows, "every image holds at least one object"
        assert len({cls for cls, *_ in rows}) == 1, "every object of an image has the image's class"
        for _, cx, cy, w, h in rows:
            x, y, w, h = float(cx), float(cy), float(w), float(h)
            # Every box lies in the half away from the band: its near edge is half the image from the band's side.
            near_edge = {"top": y - h / 2, "bottom": 1 - y - h / 2, "left": x - w / 2, "right": 1 - x - w / 2}
            assert near_edge[context.SIDES[side]] >= 0.5 - 1e-6
    assert sides == set(context.SIDES), "the band lies on every side in turn"


def test_the_band_colour_is_the_class_and_the_object_itself_is_grey(tmp_path: Path) -> None:
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=24, n_val=2, imgsz=96, seed=3, kind="context")
    root = data_yaml.parent
    classes = set()
    for image_path in (root / "images/train").glob("*.png"):
        pixels = np.asarray(Image.open(image_path)).astype(int)
        rows = [row.split() for row in (root / "labels/train" / f"{image_path.stem}.txt").read_text().splitlines()]
        _, colour = _band_side(pixels)
        assert all(int(cls) == colour for cls, *_ in rows)
        classes.add(colour)
        _, cx, cy, *_ = rows[0]
        centre = pixels[round(float(cy) * 96), round(float(cx) * 96)]
        assert centre.max() - centre.min() <= 16, "an object is grey: its colour carries no class"
    assert classes == {0, 1, 2}


def test_one_scene_with_another_band_is_another_class_with_identical_objects() -> None:
    """The far cue alone decides: the same draws with two classes differ in the band and the class only."""
    red, red_labels = context.draw_band_scene(np.random.default_rng(11), 128, 3, cls=0)
    blue, blue_labels = context.draw_band_scene(np.random.default_rng(11), 128, 3, cls=2)
    red, blue = np.asarray(red), np.asarray(blue)
    side, _ = _band_side(red.astype(int))
    x0, y0, x1, y1 = context.band_box(side, 128)
    band = np.zeros((128, 128), dtype=bool)
    band[y0 : y1 + 1, x0 : x1 + 1] = True
    differs = (red != blue).any(axis=-1)
    assert differs.any() and not (differs & ~band).any(), "only pixels of the band differ"
    assert [row.split()[1:] for row in red_labels] == [row.split()[1:] for row in blue_labels]
    assert {row.split()[0] for row in red_labels} == {"0"} and {row.split()[0] for row in blue_labels} == {"2"}


def test_clutter_shows_every_cue_colour_whatever_the_class(tmp_path: Path) -> None:
    """Small blobs in all three band colours lie off the band too, so no local colour tells the class."""
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=30, n_val=2, imgsz=128, seed=0, kind="context")
    root = data_yaml.parent
    seen: dict[int, set[int]] = {}
    for image_path in (root / "images/train").glob("*.png"):
        cls = int((root / "labels/train" / f"{image_path.stem}.txt").read_text().split()[0])
        pixels = np.asarray(Image.open(image_path)).astype(int)
        side, _ = _band_side(pixels)
        x0, y0, x1, y1 = context.band_box(side, 128)
        off_band = np.ones((128, 128), dtype=bool)
        off_band[max(0, y0 - 2) : y1 + 3, max(0, x0 - 2) : x1 + 3] = False
        distance = np.abs(pixels[:, :, np.newaxis, :] - context.CUE_COLOURS[np.newaxis, np.newaxis]).sum(axis=-1)
        colours = {int(k) for k in range(3) if ((distance[:, :, k] < 60) & off_band).sum() >= 4}
        seen.setdefault(cls, set()).update(colours)
    assert set(seen) == {0, 1, 2}
    assert all(colours == {0, 1, 2} for colours in seen.values())


def test_a_context_folder_drawn_by_an_older_version_is_regenerated(tmp_path: Path) -> None:
    """The frame scenes of version 1 are not reused as the band scenes of today's kind."""
    data_yaml = make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64, kind="context")
    manifest = tmp_path / "d/ge_nas_dataset.json"
    current = manifest.read_text()
    assert '"version": 2' in current
    image = tmp_path / "d/images/train/00000.png"
    drawn = image.read_bytes()
    manifest.write_text(current.replace('"version": 2', '"version": 1'))
    image.write_bytes(b"an old drawing")
    assert make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64, kind="context") == data_yaml
    assert image.read_bytes() == drawn and manifest.read_text() == current


def test_a_folder_of_one_kind_is_not_reused_as_the_other(tmp_path: Path) -> None:
    shapes = make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64)
    assert yaml.safe_load(shapes.read_text())["names"][0] == "circle"
    context_yaml = make_synthetic_dataset(tmp_path / "d", n_train=2, n_val=1, imgsz=64, kind="context")
    assert yaml.safe_load(context_yaml.read_text())["names"] == dict(enumerate(context.CLASS_NAMES))
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
    assert yaml.safe_load((tmp_path / "ctx/data.yaml").read_text())["names"][0] == "red-band"
