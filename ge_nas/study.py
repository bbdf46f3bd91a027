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
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, ProgrammingError, SQLAlchemyError

from ge_nas.cost import COST_NAMES
from ge_nas.errors import InputError

# Heartbeats and metric names are marked experimental in Optuna; ge-nas relies on them knowingly.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

ACCURACY_NAMES: tuple[str, ...] = ("map50-95", "map50")
STUDIES_DIR = Path("studies")
# Heartbeats let a restarted search mark the trial of a killed worker as failed.
HEARTBEAT_SECONDS = 30
_CREATE_ATTEMPTS = 4
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


def safe_url(url: str) -> str:
    """The storage URL as it may be printed: the password masked (also in a malformed URL)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\\1:***@", url)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise InputError(
            f"--storage {safe_url(url)!r} is not a database URL: use e.g. sqlite:///studies/x.db "
            "or postgresql://user:password@host/dbname"
        ) from None


def _no_driver(shown: str) -> InputError:
    return InputError(
        f"storage {shown}: its database driver is not installed; install it (e.g. psycopg2-binary for "
        "postgresql://, PyMySQL for mysql+pymysql://)"
    )


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLite waits up to a minute for another worker's write lock; a server gets 10 s to answer.

    Every ge-nas write is a short transaction, so with the 60 s busy timeout several workers
    share one SQLite file without "database is locked". SQLite keeps its default rollback
    journal (not WAL): then reading a study never rewrites the file, so a refused command
    leaves it byte for byte as it was.
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 60}}
    if backend == "postgresql":
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine on the study database with the storage's own lock and connect timeouts."""
    return create_engine(url, **_engine_kwargs(url))


def open_storage(url: str) -> RDBStorage:
    """Optuna RDB storage with heartbeats; bad URLs and unreachable servers fail fast and clearly.

    SQLite waits up to a minute for a lock instead of failing at once; a server gets 10
    seconds to answer, so a dead host is an error, not a hang.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        folder = Path(parsed.database or ".").parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create the study folder {folder}: {error.strerror}; choose --storage") from None
        if not os.access(folder, os.W_OK):
            raise InputError(f"the study folder {folder} is not writable; fix its permissions or choose --storage")
    try:
        return _rdb_storage(url)
    except ImportError:
        raise _no_driver(safe_url(url)) from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise InputError(
            f"cannot open the database at {safe_url(url)}: {reason}; check that it runs and the URL is right"
        ) from None


def _rdb_storage(url: str) -> RDBStorage:
    """RDBStorage, retried when workers starting together on a fresh server race to create its tables."""
    for attempt in range(_CREATE_ATTEMPTS - 1):
        try:
            return RDBStorage(
                url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
            )
        except (IntegrityError, ProgrammingError):
            time.sleep(0.5 + attempt)  # the winner is creating them; the next try finds them there
    return RDBStorage(
        url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
    )


def open_existing_storage(storage_url: str) -> RDBStorage:
    """Optuna's storage at ``storage_url``, refusing to create a database that is not there.

    Reading results must not leave an empty ``studies/x.db`` behind after a typo.
    """
    shown = safe_url(storage_url)
    url = _parse(storage_url)
    on_disk = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if on_disk and not Path(url.database).is_file():
        raise InputError(f"storage {shown}: no such file; run ge-nas search first, or give --storage URL")
    try:
        return RDBStorage(storage_url, engine_kwargs=_engine_kwargs(storage_url), skip_table_creation=True)
    except ImportError:
        raise _no_driver(shown) from None
    except (DBAPIError, StorageInternalError) as error:
        raise _unreadable(shown, error) from None


def study_names(storage: RDBStorage) -> list[str]:
    """Names of the studies in ``storage``; a database without Optuna's tables is an input error."""
    try:
        return sorted(s.study_name for s in storage.get_all_studies())
    except (DBAPIError, StorageInternalError) as error:
        raise _unreadable(storage.engine.url.render_as_string(hide_password=True), error) from None


def load_existing_study(storage: RDBStorage, study_name: str) -> optuna.Study:
    """The study called ``study_name``; an unknown name is an input error listing the ones there."""
    names = study_names(storage)
    if study_name not in names:
        listed = ", ".join(names) or "none"
        shown = storage.engine.url.render_as_string(hide_password=True)
        raise InputError(f"study {study_name!r} not found in {shown}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=storage)


def _unreadable(shown_url: str, error: Exception) -> InputError:
    """The driver's own reason ("no such table: version_info", "connection refused"): it carries no password."""
    cause = error.__cause__ if isinstance(error, StorageInternalError) and error.__cause__ else error
    reason = str(getattr(cause, "orig", None) or cause).splitlines()[0]
    return InputError(f"storage {shown_url}: cannot read Optuna studies there ({reason})")


def open_study(
    storage: RDBStorage,
    name: str,
    objectives: Objectives,
    settings: dict[str, Any],
) -> optuna.Study:
    """Create the study, or resume it if its settings match; refuse a different search under one name.

    ``settings`` are what makes results comparable (space fingerprint, proxy settings,
    constraints); they are stored on a new study and compared on resume. The caller sets
    the study's sampler and pruner: a resumed run seeds its sampler by the trials stored.
    """
    settings = {**settings, "objectives": objectives.names}
    existing = {s.study_name for s in storage.get_all_studies()}
    if name not in existing:
        try:
            study = optuna.create_study(study_name=name, storage=storage, directions=objectives.directions)
            return _adopt(study, settings, objectives)
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another worker created it a moment ago: resume it like any existing study
    study = optuna.load_study(study_name=name, storage=storage)
    if "settings" not in study.user_attrs:
        if study.get_trials(deepcopy=False) or len(study.directions) != len(objectives.directions):
            raise InputError(f"study {name!r} was not made by ge-nas search; choose another --study name")
        return _adopt(study, settings, objectives)  # created by a worker that has not stored its settings yet
    stored = _flatten(study.user_attrs["settings"])
    for key, value in _flatten(settings).items():
        if stored.get(key) != value:
            raise InputError(
                f"study {name!r} was created with {key} = {stored.get(key)!r}, not {value!r}: resume it with "
                f"the same {key}, or start a new study with --study NEW_NAME"
            )
    return study


def _adopt(study: optuna.Study, settings: dict[str, Any], objectives: Objectives) -> optuna.Study:
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
