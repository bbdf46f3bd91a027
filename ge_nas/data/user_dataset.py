"""A user's Ultralytics dataset, checked the way the trainer will read it, before any study is touched.

A dataset that the trainer cannot use would otherwise fail every trial, after the study
was created. So before a search starts: the YAML must read (safely), name its classes
(``names`` or ``nc``) and its splits; the splits resolve as Ultralytics resolves them
(:mod:`ge_nas.yolo.datasets`); each split must hold at least one readable image; and every
label line must be a class id below the class count followed by numbers.

:func:`dataset_fingerprint` is what a study remembers of its dataset, so that a resumed
study refuses another dataset that happens to share its file name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from PIL import Image

from ge_nas.errors import InputError
from ge_nas.safe_yaml import excerpt, load_yaml
from ge_nas.yolo.datasets import IMAGE_SUFFIXES, SPLITS, ResolvedDataset, label_path, resolve_dataset

__all__ = ["check_dataset", "class_count", "dataset_fingerprint"]

# Images opened per split to find a readable one: corrupt files are skipped by the trainer, all corrupt is not.
_IMAGES_PROBED = 20


def check_dataset(data_yaml: Path) -> Path:
    """The dataset YAML's resolved path, once the dataset is fit to train on.

    Raises:
        InputError: the first problem found, with the file (and line) and the fix.
    """
    resolved = _resolve(data_yaml)
    for split in SPLITS:
        images = _images(data_yaml, split, resolved.splits[split])
        _check_readable(data_yaml, split, images)
        _check_labels(data_yaml, images, len(resolved.names))
    return data_yaml.resolve()


def class_count(data_yaml: Path) -> int:
    """How many classes the dataset names."""
    return len(_resolve(data_yaml).names)


def dataset_fingerprint(data_yaml: Path) -> dict[str, str]:
    """What identifies the dataset: its resolved YAML path, the YAML's hash, and each split's image list.

    Image lists are hashed by file name (not contents), so a large dataset is fingerprinted in
    the time it takes to list it.
    """
    resolved = _resolve(data_yaml)
    fingerprint = {
        "yaml": str(data_yaml.resolve()),
        "yaml_sha256": hashlib.sha256(data_yaml.read_bytes()).hexdigest()[:16],
    }
    for split in SPLITS:
        images = _images(data_yaml, split, resolved.splits[split])
        listing = "\n".join(sorted(str(p) for p in images)).encode()
        fingerprint[f"{split}_images"] = (
            f"{len(images)} images, names sha256:{hashlib.sha256(listing).hexdigest()[:16]}"
        )
    return fingerprint


def _resolve(data_yaml: Path) -> ResolvedDataset:
    if not data_yaml.is_file():
        raise InputError(f"dataset {data_yaml}: no such file; give the path to an Ultralytics dataset YAML")
    try:
        text = data_yaml.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"dataset {data_yaml}: cannot be read ({type(error).__name__}); fix the file") from None
    data = load_yaml(text, f"dataset {data_yaml}")
    if not isinstance(data, dict) or not data.get("train") or not data.get("val"):
        raise InputError(f"dataset {data_yaml}: needs 'train' and 'val' entries (image folders or lists)")
    _check_types(data_yaml, data)
    if data.get("names") is None and data.get("nc") is None:
        raise InputError(f"dataset {data_yaml}: names no classes; add 'names: {{0: first, 1: second, ...}}'")
    return resolve_dataset(data_yaml, data)


def _check_types(data_yaml: Path, data: dict[str, Any]) -> None:
    for key in SPLITS:
        value = data[key]
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(entry, str) and entry for entry in entries):
            raise InputError(
                f"dataset {data_yaml}: '{key}' is {excerpt(value)}; give a folder or list file (a string), "
                "or a list of them"
            )
    if "path" in data and data["path"] is not None and not isinstance(data["path"], str):
        raise InputError(
            f"dataset {data_yaml}: 'path' is {excerpt(data['path'])}; give the dataset's folder as a string"
        )


def _images(data_yaml: Path, split: str, sources: tuple[Path, ...]) -> list[Path]:
    """The split's image files, as Ultralytics lists them: image suffixes in folders (recursively) and list files."""
    images: list[Path] = []
    for source in sources:
        if source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                state = "is empty" if not any(source.iterdir()) else "holds no images"
                raise InputError(f"dataset {data_yaml}: {split} folder {source} {state}; add images")
        else:
            lines = [line.strip() for line in source.read_text(errors="replace").splitlines() if line.strip()]
            found = [(source.parent / line).resolve() if line.startswith("./") else Path(line) for line in lines]
            found = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise InputError(f"dataset {data_yaml}: {split} list {source} names no images; add image paths")
        images.extend(found)
    return images


def _check_readable(data_yaml: Path, split: str, images: list[Path]) -> None:
    for image in images[:_IMAGES_PROBED]:
        try:
            with Image.open(image) as opened:
                opened.verify()
            return
        except Exception:  # whatever a decoder (or Ultralytics' patched opener) raises: unreadable
            continue
    raise InputError(
        f"dataset {data_yaml}: none of the first {min(len(images), _IMAGES_PROBED)} {split} images can be read "
        f"(e.g. {images[0]}); replace the corrupt files"
    )


def _check_labels(data_yaml: Path, images: list[Path], classes: int) -> None:
    """Every label line: an integer class id in [0, classes) and then numbers (a box or a polygon)."""
    for image in images:
        labels = label_path(image)
        if not labels.is_file():
            continue  # an image without labels is a background image
        for number, line in enumerate(labels.read_text(errors="replace").splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                values = [float(field) for field in fields]
            except ValueError:
                values = []
            if len(values) < 5 or not values[0].is_integer():
                raise InputError(
                    f"dataset {data_yaml}: {labels} line {number} is not 'class x y w h' ({excerpt(line, 40)}); "
                    "fix the label file"
                )
            if not 0 <= values[0] < classes:
                raise InputError(
                    f"dataset {data_yaml}: {labels} line {number} has class {int(values[0])}, but the dataset "
                    f"names {classes} class(es) (0..{classes - 1}); fix the label or 'names'"
                )
