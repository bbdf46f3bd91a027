"""A dataset YAML read the way Ultralytics' trainer reads it: the same keys, the same path resolution.

A check that resolves paths its own way passes datasets the trainer then cannot read (a
relative ``path:`` is taken from the current folder by Ultralytics, not from the YAML's
folder). :func:`resolve_dataset` resolves the splits by Ultralytics' rule, so its errors can
name the missing folder, and then lets Ultralytics' own ``check_det_dataset`` (downloads
off) have the last word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths
from ultralytics.utils import DATASETS_DIR

from ge_nas.errors import InputError
from ge_nas.yolo.console import no_font_download, quiet

__all__ = ["IMAGE_SUFFIXES", "SPLITS", "ResolvedDataset", "label_path", "resolve_dataset"]

IMAGE_SUFFIXES = frozenset(f".{suffix}" for suffix in IMG_FORMATS)
SPLITS = ("train", "val")


@dataclass(frozen=True)
class ResolvedDataset:
    """Class names and each split's image sources (folders or list files) as absolute paths."""

    names: tuple[str, ...]
    splits: dict[str, tuple[Path, ...]]  # "train", "val" -> folders or .txt lists


def resolve_dataset(data_yaml: Path, data: dict[str, Any]) -> ResolvedDataset:
    """The splits of ``data`` (read from ``data_yaml``) where Ultralytics will look for them.

    ``data`` must hold ``train`` and ``val`` as a string or a list of strings, and ``path``,
    if any, as a string.

    Raises:
        InputError: a split's folder or list file does not exist, or Ultralytics refuses the YAML.
    """
    root = Path(data.get("path") or data_yaml.parent)
    if not root.exists() and not root.is_absolute():
        root = (DATASETS_DIR / root).resolve()  # Ultralytics' fallback for a relative path
    splits: dict[str, tuple[Path, ...]] = {}
    for split in SPLITS:
        entries = data[split] if isinstance(data[split], list) else [data[split]]
        sources = []
        for entry in entries:
            source = (root / entry).resolve()
            if not source.exists() and str(entry).startswith("../"):
                source = (root / str(entry)[3:]).resolve()
            if not source.exists():
                relative = data.get("path") and not Path(data["path"]).is_absolute()
                where = f" (a relative 'path:' is read from the current folder, {Path.cwd()})" if relative else ""
                raise InputError(f"dataset {data_yaml}: {split} path {source} does not exist{where}; fix '{split}'")
            sources.append(source)
        splits[split] = tuple(sources)
    try:
        with quiet(), no_font_download():
            checked = check_det_dataset(str(data_yaml), autodownload=False)
    except (SyntaxError, TypeError, ValueError, FileNotFoundError, AssertionError) as error:
        raise InputError(f"dataset {data_yaml}: {_message(error, data_yaml)}; fix the dataset YAML") from None
    names = checked["names"]
    ordered = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    return ResolvedDataset(tuple(str(n) for n in ordered), splits)


def label_path(image: Path) -> Path:
    """Where Ultralytics looks for an image's labels (the last ``images`` folder becomes ``labels``)."""
    return Path(img2label_paths([image])[0])


def _message(error: Exception, data_yaml: Path) -> str:
    """Ultralytics' message in one line: no emojis, no notes, no dataset path in front."""
    lines = [line for line in str(error).splitlines() if line.strip() and not line.startswith("Note")]
    text = "; ".join(lines).replace(f"Dataset '{data_yaml}' ", "").replace(str(data_yaml), "")
    return re.sub(r"[^\x00-\x7f]+", "", text).strip(" .:'") or type(error).__name__
