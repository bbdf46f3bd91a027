"""Checks on a user's Ultralytics dataset YAML, so a bad path fails before any study is touched."""

from __future__ import annotations

from pathlib import Path

import yaml

from ge_nas.errors import InputError

__all__ = ["check_dataset"]


def check_dataset(data_yaml: Path) -> Path:
    """Return the dataset YAML's path if it names existing ``train`` and ``val`` image folders or lists."""
    if not data_yaml.is_file():
        raise InputError(f"dataset {data_yaml}: no such file; give the path to an Ultralytics dataset YAML")
    try:
        data = yaml.safe_load(data_yaml.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(
            f"dataset {data_yaml}: cannot be read as YAML ({type(error).__name__}); fix the file"
        ) from None
    if not isinstance(data, dict) or not data.get("train") or not data.get("val"):
        raise InputError(f"dataset {data_yaml}: needs 'train' and 'val' entries (image folders or lists)")
    root = Path(data.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = data_yaml.parent / root
    for split in ("train", "val"):
        for entry in data[split] if isinstance(data[split], list) else [data[split]]:
            location = Path(entry) if Path(entry).is_absolute() else root / entry
            if not location.exists():
                raise InputError(f"dataset {data_yaml}: {split} path {location} does not exist; fix '{split}'")
            if location.is_dir() and not any(location.iterdir()):
                raise InputError(f"dataset {data_yaml}: {split} folder {location} is empty; add images")
    return data_yaml.resolve()
