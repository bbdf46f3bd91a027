"""Study databases: URLs, engines and Optuna storages, with passwords masked and bad URLs refused.

Every path that opens or prints a storage URL goes through here, so a password never
reaches the screen and a malformed URL is a one-line error.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, ProgrammingError, SQLAlchemyError

from ge_nas.errors import InputError

__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "STUDIES_DIR",
    "check_study_name",
    "default_storage_url",
    "make_engine",
    "open_existing_storage",
    "open_storage",
    "safe_url",
    "unreadable",
]

# Heartbeats and metric names are marked experimental in Optuna; ge-nas relies on them knowingly.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

STUDIES_DIR = Path("studies")
# Heartbeats let a restarted search mark the trial of a killed worker as failed.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 90
_CREATE_ATTEMPTS = 4


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
        raise unreadable(shown, error) from None


def unreadable(shown_url: str, error: Exception) -> InputError:
    """The driver's own reason ("no such table: version_info", "connection refused"): it carries no password."""
    cause = error.__cause__ if isinstance(error, StorageInternalError) and error.__cause__ else error
    reason = str(getattr(cause, "orig", None) or cause).splitlines()[0]
    return InputError(f"storage {shown_url}: cannot read Optuna studies there ({reason})")
