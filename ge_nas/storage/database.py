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
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from ge_nas.errors import InputError

__all__ = [
    "STUDIES_DIR",
    "check_study_name",
    "create_tables",
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
_CREATE_ATTEMPTS = 4


def default_storage_url(study_name: str) -> str:
    return f"sqlite:///{STUDIES_DIR / study_name}.db"


def check_study_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise InputError(f"--study {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or digit")
    return name


def safe_url(url: str) -> str:
    """The storage URL as it may be printed: the password masked, whatever the URL's shape.

    A URL that does not parse cleanly (SQLAlchemy's error, or a user name or password holding
    an unencoded ``@``, which SQLAlchemy would split in the wrong place) shows nothing after
    its scheme: any part of it could be the password.
    """
    parsed = _parsed(url)
    if parsed is None:
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://***" if scheme.replace("+", "").isalnum() else "***"
    return parsed.render_as_string(hide_password=True)


def _parsed(url: str) -> URL | None:
    """The URL as SQLAlchemy reads it, or None when it cannot be read unambiguously."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number raises only when read, in some versions
    except (ArgumentError, ValueError, TypeError):
        return None
    if "@" in (parsed.host or ""):  # user:p@ss@host: the rest of the password would show as the host
        return None
    return parsed


def _parse(url: str) -> URL:
    parsed = _parsed(url)
    if parsed is None:
        raise InputError(
            f"--storage {safe_url(url)} is not a database URL: use e.g. sqlite:///studies/x.db or "
            "postgresql://user:password@host:5432/dbname, with @ : / in a user name or password "
            "written as %40 %3A %2F"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.username or parsed.password or parsed.host:
            raise InputError(
                f"--storage {safe_url(url)}: an SQLite URL names a file and takes no user, password or host; "
                "use sqlite:///path/to/study.db"
            )
        if parsed.database in (None, "", ":memory:"):
            raise InputError(
                f"--storage {safe_url(url)} is an in-memory database: every result would be lost when ge-nas "
                "exits; give a file, e.g. sqlite:///studies/x.db"
            )
    return parsed


def _sqlite_file(url: URL) -> Path:
    """The file an SQLite URL names, also in SQLite's URI form (``sqlite:///file:x.db?mode=ro&uri=true``)."""
    database = str(url.database)
    return Path(database.removeprefix("file:") if url.query.get("uri") == "true" else database)


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
    backend = _parse(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 60}}
    if backend == "postgresql":
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine on the study database with the storage's own lock and connect timeouts."""
    return create_engine(url, **_engine_kwargs(url))


def open_storage(url: str) -> RDBStorage:
    """Optuna RDB storage; bad URLs and unreachable servers fail fast and clearly.

    No Optuna heartbeat thread: workers keep their own (:mod:`ge_nas.storage.workers`), which
    an interrupt never waits for.

    SQLite waits up to a minute for a lock instead of failing at once; a server gets 10
    seconds to answer, so a dead host is an error, not a hang.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        database = _sqlite_file(parsed)
        folder = database.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create the study folder {folder}: {error.strerror}; choose --storage") from None
        if not os.access(folder, os.W_OK):
            raise InputError(f"the study folder {folder} is not writable; fix its permissions or choose --storage")
        read_only = parsed.query.get("mode") == "ro" or (database.exists() and not os.access(database, os.W_OK))
        if read_only:
            raise InputError(
                f"the study database {safe_url(url)} is read-only, and a search writes every trial there; "
                "make it writable, or copy it and give --storage sqlite:///COPY.db"
            )
    try:
        storage = _rdb_storage(url)
    except ImportError:
        raise _no_driver(safe_url(url)) from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise InputError(
            f"cannot open the database at {safe_url(url)}: {reason}; check that it runs and the URL is right"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _lock_on_begin(storage.engine)
    return storage


def _lock_on_begin(engine: Engine) -> None:
    """Make each SQLite transaction take the write lock when it begins (``BEGIN IMMEDIATE``).

    Optuna hands a queued trial to a worker by reading it as WAITING and setting it RUNNING
    in one transaction, relying on ``SELECT ... FOR UPDATE``, which SQLite ignores; and
    Python's sqlite3 driver begins a transaction only at the first write, so two workers
    could both read WAITING and both run the same trial (optuna/optuna#4621). Locking at
    BEGIN makes that read-and-set atomic. This is SQLAlchemy's recipe for pysqlite's
    transactions; only a search's own storage gets it (reading a study takes no write lock,
    so it works on a read-only file and never waits for a search).
    """

    @event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners were added are not reused


def _rdb_storage(url: str) -> RDBStorage:
    """RDBStorage, retried when workers starting together on a fresh server race to create its tables."""
    for attempt in range(_CREATE_ATTEMPTS - 1):
        try:
            return RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except (IntegrityError, ProgrammingError, OperationalError) as error:
            if isinstance(error, OperationalError) and "already exists" not in str(error):
                raise
            time.sleep(0.5 + attempt)  # the winner is creating them; the next try finds them there
    return RDBStorage(url, engine_kwargs=_engine_kwargs(url))


def open_existing_storage(storage_url: str) -> RDBStorage:
    """Optuna's storage at ``storage_url``, refusing to create a database that is not there.

    Reading results must not leave an empty ``studies/x.db`` behind after a typo.
    """
    shown = safe_url(storage_url)
    url = _parse(storage_url)
    if url.get_backend_name() == "sqlite" and not _sqlite_file(url).is_file():
        raise InputError(f"storage {shown}: no such file; run ge-nas search first, or give --storage URL")
    try:
        return RDBStorage(storage_url, engine_kwargs=_engine_kwargs(storage_url), skip_table_creation=True)
    except ImportError:
        raise _no_driver(shown) from None
    except (DBAPIError, StorageInternalError) as error:
        raise unreadable(shown, error) from None


def create_tables(metadata: MetaData, engine: Engine) -> None:
    """Create ge-nas's own tables (never Optuna's); workers starting together on a new database may race to."""
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            metadata.create_all(engine)
            return
        except (IntegrityError, ProgrammingError, OperationalError) as error:
            if attempt == _CREATE_ATTEMPTS - 1 or (
                isinstance(error, OperationalError) and "already exists" not in str(error)
            ):
                raise
            time.sleep(0.5 + attempt)  # another worker is creating them; the next try finds them


def unreadable(shown_url: str, error: Exception) -> InputError:
    """The driver's own reason ("no such table: version_info", "connection refused"): it carries no password."""
    cause = error.__cause__ if isinstance(error, StorageInternalError) and error.__cause__ else error
    reason = str(getattr(cause, "orig", None) or cause).splitlines()[0]
    return InputError(f"storage {shown_url}: cannot read Optuna studies there ({reason})")
