"""One Optuna study per search: created with its settings, resumed only with the same ones, loaded by name.

A study's user attributes record what makes its results comparable (the ``settings`` a
resumed run must match, see :meth:`ge_nas.search.config.SearchConfig.comparable_settings`),
the objectives' names, the dataset and the parent, so everything needed to rebuild a
result lives in the database. They are read and written here only:

============  ==============================================================
``settings``  what a resumed run must match (space, proxy, constraints, parent, objectives)
``dataset``   the dataset YAML the search trained on (retrain finds it there)
``parent``    ``{"path", "sha256"}`` of the checkpoint candidates inherit from
``supernet``  ``{"path", "sha256"}`` of the trained supernet (``--strategy supernet`` only)
============  ==============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from sqlalchemy.exc import DBAPIError

from ge_nas.errors import InputError
from ge_nas.safe_yaml import excerpt
from ge_nas.storage.database import unreadable

__all__ = [
    "PARENT",
    "SUPERNET",
    "load_existing_study",
    "objective_names",
    "open_study",
    "proxy_settings",
    "record_checkpoint",
    "record_dataset",
    "stored_checkpoint",
    "stored_dataset",
    "stored_settings",
    "study_names",
]


def study_names(storage: RDBStorage) -> list[str]:
    """Names of the studies in ``storage``; a database without Optuna's tables is an input error."""
    try:
        return sorted(s.study_name for s in storage.get_all_studies())
    except (DBAPIError, StorageInternalError) as error:
        raise unreadable(storage.engine.url.render_as_string(hide_password=True), error) from None


def load_existing_study(storage: RDBStorage, study_name: str) -> optuna.Study:
    """The study called ``study_name``; an unknown name is an input error listing the ones there."""
    names = study_names(storage)
    if study_name not in names:
        listed = ", ".join(names) or "none"
        shown = storage.engine.url.render_as_string(hide_password=True)
        raise InputError(f"study {study_name!r} not found in {shown}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=storage)


def stored_settings(study: optuna.Study) -> dict[str, Any]:
    """What the study was created with (empty for a study ge-nas did not make)."""
    return dict(study.user_attrs.get("settings") or {})


def proxy_settings(study: optuna.Study) -> dict[str, Any]:
    """How the study's proxies trained: epochs, image size, batch, ... (empty when unknown)."""
    return dict(stored_settings(study).get("proxy") or {})


def record_dataset(study: optuna.Study, data_yaml: str) -> None:
    """Remember the dataset of the first run; it is not compared on resume (the path may move)."""
    if "dataset" not in study.user_attrs:
        study.set_user_attr("dataset", data_yaml)


def stored_dataset(study: optuna.Study) -> str | None:
    return study.user_attrs.get("dataset")


# The checkpoints a study keeps: the parent its candidates inherit from, and its trained supernet.
PARENT = "parent"
SUPERNET = "supernet"


def record_checkpoint(study: optuna.Study, which: str, path: str, sha256: str) -> None:
    """Remember the study's ``which`` checkpoint (:data:`PARENT` or :data:`SUPERNET`): its path and hash."""
    study.set_user_attr(which, {"path": path, "sha256": sha256})


def stored_checkpoint(study: optuna.Study, which: str) -> dict[str, str]:
    """``{"path", "sha256"}`` of the study's ``which`` checkpoint; empty when it has none."""
    return dict(study.user_attrs.get(which) or {})


def objective_names(study: optuna.Study) -> tuple[str, ...]:
    """The study's objectives, accuracy first, as ``ge-nas search --objectives`` named them."""
    names = study.metric_names or stored_settings(study).get("objectives")
    if not names or len(names) != len(study.directions):
        raise InputError(f"study {study.study_name!r} was not made by ge-nas search: its objectives have no names")
    return tuple(names)


def open_study(
    storage: RDBStorage, name: str, objectives: Sequence[str], directions: Sequence[str], settings: dict[str, Any]
) -> optuna.Study:
    """Create the study, or resume it if its settings match; refuse a different search under one name.

    ``settings`` are what makes results comparable (space fingerprint, proxy settings,
    constraints); they are stored on a new study and compared on resume. The caller sets
    the study's sampler and pruner: a resumed run seeds its sampler by the trials stored.
    """
    settings = {**settings, "objectives": list(objectives)}
    existing = {s.study_name for s in storage.get_all_studies()}
    if name not in existing:
        try:
            study = optuna.create_study(study_name=name, storage=storage, directions=list(directions))
            return _adopt(study, settings, objectives)
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another worker created it a moment ago: resume it like any existing study
    study = optuna.load_study(study_name=name, storage=storage)
    if "settings" not in study.user_attrs:
        if study.get_trials(deepcopy=False) or len(study.directions) != len(directions):
            raise InputError(f"study {name!r} was not made by ge-nas search; choose another --study name")
        return _adopt(study, settings, objectives)  # created by a worker that has not stored its settings yet
    stored, wanted = _flatten(study.user_attrs["settings"]), _flatten(settings)
    for key in [*wanted, *(key for key in stored if key not in wanted)]:
        if stored.get(key) != wanted.get(key):  # both ways: a setting dropped on resume differs too
            raise InputError(
                f"study {name!r} was created with {key} = {_shown(stored, key)}, not {_shown(wanted, key)}: "
                f"resume it with the same {key}, or start a new study with --study NEW_NAME"
            )
    return study


def _shown(settings: dict[str, Any], key: str) -> str:
    """A setting's value for an error message; one stored only when not at its default is "unset (the default)"."""
    return excerpt(settings[key], 200) if key in settings else "unset (the default)"


def _adopt(study: optuna.Study, settings: dict[str, Any], objectives: Sequence[str]) -> optuna.Study:
    study.set_user_attr("settings", settings)
    study.set_metric_names(list(objectives))
    return study


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"proxy": {"epochs": 2}}`` -> ``{"proxy.epochs": 2}``, so a mismatch names the exact setting."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
