"""Study storage: one Optuna study per search, in Optuna's RDB storage (SQLite by default).

Everything needed to rebuild a result lives in the database: the study's user
attributes record what the search compares (space fingerprint, objectives, proxy
settings, constraints), and every trial's user attributes hold its architecture
(key, code, model YAML), costs, per-epoch metrics and what happened to it. So
``optuna-dashboard sqlite:///studies/x.db`` and plain Optuna read a study as it is.

Trial user attributes (the documented schema):

==================  ==========================================================
``key``, ``code``   the candidate's canonical key and short code
``units``           number of insertion points with GE
``baseline``        true for the no-GE baseline (always trial 0)
``yaml``            the generated model YAML text
``params``          parameters; ``gflops`` at the proxy image size
``latency_ms``      median batch-1 latency; ``latency_ratio`` over the baseline's
``epochs``          per-epoch validation metrics: ``[{"epoch", "map50", "map50-95"}]``
``map50``, ``map50-95``  final proxy accuracy
``train_seconds``   wall time of the proxy training
``reused_from``     trial number whose result was reused (same architecture)
``infeasible``      why a candidate was rejected before training (over a budget)
``constraints``     budget violations, feasible when all <= 0 (Optuna's convention)
``pruned_epoch``, ``prune_reason``   when and why the proxy was stopped early
``error``           why the trial failed (an exception, Ctrl-C, a killed worker)
``worker``          ``host:pid`` of the process that ran it
==================  ==========================================================
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from ge_nas.cost import COST_NAMES
from ge_nas.errors import InputError

# Heartbeats and metric names are marked experimental in Optuna; ge-nas relies on them knowingly.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

ACCURACY_NAMES: tuple[str, ...] = ("map50-95", "map50")
STUDIES_DIR = Path("studies")
# Heartbeats let a restarted search mark the trial of a killed worker as failed.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 90


@dataclass(frozen=True)
class Objectives:
    """Accuracy (maximised) against zero or more costs (minimised)."""

    accuracy: str = "map50-95"
    costs: tuple[str, ...] = ("gflops",)

    @classmethod
    def parse(cls, text: str) -> Objectives:
        """``"map50-95,gflops,latency"``: one accuracy name, then cost names."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        accuracy = [n for n in names if n in ACCURACY_NAMES]
        costs = [n for n in names if n in COST_NAMES]
        unknown = [n for n in names if n not in ACCURACY_NAMES + COST_NAMES]
        if unknown or len(accuracy) != 1 or len(set(costs)) != len(costs):
            raise InputError(
                f"--objectives {text!r}: give exactly one accuracy ({' or '.join(ACCURACY_NAMES)}) "
                f"and any distinct costs from {', '.join(COST_NAMES)}, e.g. map50-95,gflops"
            )
        return cls(accuracy[0], tuple(costs))

    @property
    def names(self) -> list[str]:
        return [self.accuracy, *self.costs]

    @property
    def directions(self) -> list[str]:
        return ["maximize"] + ["minimize"] * len(self.costs)

    @property
    def multi(self) -> bool:
        return bool(self.costs)


def default_storage_url(study_name: str) -> str:
    return f"sqlite:///{STUDIES_DIR / study_name}.db"


def check_study_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise InputError(f"--study {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or digit")
    return name


def open_storage(url: str) -> RDBStorage:
    """Optuna RDB storage with heartbeats; SQLite waits for locks instead of failing at once."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    return RDBStorage(
        url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
    )


def load_existing_study(storage_url: str | None, name: str) -> optuna.Study:
    """Open a study that must already exist, without creating a database or a study by accident."""
    url = storage_url or default_storage_url(name)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise InputError(
            f"no study database at {url.removeprefix('sqlite:///')}: run ge-nas search --study {name} first, "
            "or pass --storage"
        )
    storage = open_storage(url)
    names = sorted(s.study_name for s in storage.get_all_studies())
    if name not in names:
        raise InputError(f"study {name!r} not found in this storage; it holds: {', '.join(names) or 'no studies'}")
    return optuna.load_study(study_name=name, storage=storage)


def open_study(
    storage: RDBStorage,
    name: str,
    objectives: Objectives,
    settings: dict[str, Any],
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study, or resume it if its settings match; refuse a different search under one name.

    ``settings`` are what makes results comparable (space fingerprint, proxy settings,
    constraints); they are stored on a new study and compared on resume.
    """
    settings = {**settings, "objectives": objectives.names}
    existing = {s.study_name for s in storage.get_all_studies()}
    if name in existing:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        stored = _flatten(study.user_attrs.get("settings", {}))
        for key, value in _flatten(settings).items():
            if stored.get(key) != value:
                raise InputError(
                    f"study {name!r} was created with {key} = {stored.get(key)!r}, not {value!r}: resume it with "
                    f"the same {key}, or start a new study with --study NEW_NAME"
                )
        return study
    study = optuna.create_study(
        study_name=name, storage=storage, directions=objectives.directions, sampler=sampler, pruner=pruner
    )
    study.set_user_attr("settings", settings)
    study.set_metric_names(objectives.names)
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


def counted_trials(trials: Sequence[FrozenTrial]) -> int:
    """Trials that count towards ``--trials``: completed and pruned ones (failed ones are retried)."""
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)


def evaluated_trial(trials: Sequence[FrozenTrial], key: str) -> FrozenTrial | None:
    """The completed trial that first evaluated the architecture ``key``, if any."""
    for t in trials:
        if t.state == TrialState.COMPLETE and t.user_attrs.get("key") == key and "reused_from" not in t.user_attrs:
            return t
    return None


def worker_id() -> str:
    """``host:pid`` of this process, stored on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark failed the running trials whose worker process on this machine no longer exists.

    A worker killed mid-trial (SIGKILL, out of memory, a crash) leaves its trial RUNNING.
    Heartbeats catch that everywhere, but only after their grace period; a trial that was
    run by a dead process on this very machine is known to be orphaned at once.
    """
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or _process_alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(trial._trial_id, "error", "its worker process ended mid-trial (killed?)")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        failed.append(trial.number)
    return failed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def constraint_values(trial: FrozenTrial) -> list[float]:
    """Optuna's ``constraints_func``: the total budget violation, 0 when feasible or untested.

    One value for every trial, so trials stopped before their costs were known fit too.
    """
    return [sum(max(0.0, v) for v in trial.user_attrs.get("constraints", []))]
