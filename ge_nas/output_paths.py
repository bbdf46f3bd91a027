"""Where ge-nas writes a file or folder the user named: checked before anything is written.

Writing onto a folder, or under a path whose parent is a file, fails deep inside with a
traceback; these checks turn that into one line naming the option and the fix.
"""

from __future__ import annotations

from pathlib import Path

from ge_nas.errors import InputError

__all__ = ["check_output_file", "check_output_folder"]


def check_output_file(path: Path, option: str) -> bool:
    """Whether ``path`` (to be written as a file) already exists and will be replaced.

    Raises:
        InputError: ``path`` is a folder, or a folder it would go in is a file.
    """
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name, e.g. {path / 'out'}{path.suffix}")
    _check_parents(path, option)
    return path.exists()


def check_output_folder(path: Path, option: str) -> None:
    """``path`` is a folder, or can be made one.

    Raises:
        InputError: ``path`` is a file, or a folder it would go in is a file.
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file; give a folder")
    _check_parents(path, option)


def _check_parents(path: Path, option: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
            return
