"""Workers: who runs a trial, whether they still live, and who trains which architecture.

A worker is one ge-nas process running trials of a study. It registers in the study's
database (``ge_nas_workers``) under an id no other process can have (host, pid and a
random part) and a daemon thread refreshes its ``seen_at`` every :data:`HEARTBEAT_SECONDS`.
Nothing waits for that thread: interrupting a worker never depends on it.

A RUNNING trial is failed, so that its place is taken again, when

* its worker ran on this very machine (same host, boot and process namespace) and its
  process is gone: at once;
* its worker's heartbeat is older than :data:`GRACE_SECONDS`;
* no ge-nas worker owns it (a trial made by plain Optuna's ``study.ask()``, or by a version
  without worker rows) and it has run for :data:`GRACE_SECONDS`.

Claims (``ge_nas_claims``) say which trial trains an architecture, and which worker trains a
study's parent. A claim is a primary-key insert, atomic on SQLite and PostgreSQL alike, so
two workers never train the same thing; a claim whose trial failed or whose worker died is
taken over with a compare-and-swap update.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import optuna
from optuna.trial import TrialState
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ge_nas.storage.database import create_tables, make_engine
from ge_nas.storage.records import Status, TrialRecord, mark_failed, read_record

__all__ = ["GRACE_SECONDS", "HEARTBEAT_SECONDS", "Claim", "StaleTrial", "Worker"]

HEARTBEAT_SECONDS = 20.0
GRACE_SECONDS = 90.0

METADATA = MetaData()
WORKERS = Table(
    "ge_nas_workers",
    METADATA,
    Column("worker_id", String(128), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("machine", String(255), nullable=False),  # host, boot and process namespace: where a pid means something
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),  # UTC
    Column("seen_at", DateTime, nullable=False),  # UTC, refreshed by the heartbeat
)
CLAIMS = Table(
    "ge_nas_claims",
    METADATA,
    Column("study_name", String(512), primary_key=True),
    Column("claim", String(64), primary_key=True),  # sha256 of what is claimed (a key can be long)
    Column("what", Text, nullable=False),  # an architecture key, or "parent"
    Column("trial_number", Integer),  # the trial training it; None for the parent
    Column("worker_id", String(128), nullable=False),
    Column("claimed_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Claim:
    """Who holds a claim: the trial training it (None for the parent) and its worker."""

    trial_number: int | None
    worker_id: str


@dataclass(frozen=True)
class StaleTrial:
    """A RUNNING trial no live worker runs, and why."""

    number: int
    reason: str


class Worker:
    """This process as a worker of one study: its id, heartbeat, liveness checks and claims.

    Example:
        >>> with Worker("sqlite:///studies/x.db", "x") as worker:  # doctest: +SKIP
        ...     if worker.claim("9:theta:4:after", trial_number=3).trial_number == 3:
        ...         ...  # this trial trains the architecture
    """

    def __init__(self, storage_url: str, study_name: str) -> None:
        self.study_name = study_name
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._engine = make_engine(storage_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Register, and keep the registration fresh from a daemon thread."""
        create_tables(METADATA, self._engine)
        now = _now()
        row = {"worker_id": self.id, "host": socket.gethostname(), "machine": _machine(), "pid": os.getpid()}
        with self._engine.begin() as connection:
            connection.execute(insert(WORKERS).values(**row, started_at=now, seen_at=now))
        self._thread = threading.Thread(target=self._beat, name="ge-nas-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat without waiting for it (it may be stuck on a lock; it is a daemon)."""
        self._stop.set()
        self._engine.dispose()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with self._engine.begin() as connection:
                    connection.execute(update(WORKERS).where(WORKERS.c.worker_id == self.id).values(seen_at=_now()))
            except SQLAlchemyError:
                continue  # a busy or briefly unreachable database: the next beat tries again

    # --- liveness ---

    def alive(self, worker_id: str | None, started: datetime | None = None) -> bool:
        """Whether ``worker_id`` is a live worker; an unknown one is taken as alive for :data:`GRACE_SECONDS`.

        ``started`` (UTC) is when its trial started: the bound for a trial no ge-nas worker owns.
        """
        if worker_id == self.id:
            return True
        with self._engine.connect() as connection:
            row = connection.execute(select(WORKERS).where(WORKERS.c.worker_id == (worker_id or ""))).first()
        now = _now()
        if row is None:
            host, _, rest = (worker_id or "").partition(":")
            pid = rest.split(":")[0]
            if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
                return False  # a worker of an earlier version on this machine, gone
            return started is None or now - _naive_utc(started) < timedelta(seconds=GRACE_SECONDS)
        if row.machine == _machine() and not _process_alive(row.pid):
            return False
        return now - row.seen_at < timedelta(seconds=GRACE_SECONDS)

    def stale_trials(self, study: optuna.Study) -> list[StaleTrial]:
        """The study's RUNNING trials that no live worker runs."""
        stale = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            record = read_record(trial)
            if self.alive(record.worker, trial.datetime_start):
                continue
            if record.worker is None:
                reason = (
                    f"no ge-nas worker ran it (made by Optuna directly?) and it showed no life for {GRACE_SECONDS:g} s"
                )
            else:
                reason = "its worker process ended mid-trial (killed?)"
            stale.append(StaleTrial(trial.number, reason))
        return stale

    def fail_stale_trials(self, study: optuna.Study) -> list[StaleTrial]:
        """Fail :meth:`stale_trials`, so their places are taken again; returns them."""
        stale = self.stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        for item in stale:
            mark_failed(study, trials[item.number], item.reason)
        return stale

    def unowned_running(self, study: optuna.Study) -> list[int]:
        """RUNNING trials no ge-nas worker row owns, still within their grace period (worth a message)."""
        numbers = []
        with self._engine.connect() as connection:
            known = {row.worker_id for row in connection.execute(select(WORKERS.c.worker_id))}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if read_record(trial).worker not in known:
                numbers.append(trial.number)
        return numbers

    # --- claims ---

    def claim(self, what: str, trial_number: int | None = None) -> Claim:
        """Claim ``what`` for ``trial_number`` (or for this worker); returns whoever holds it now."""
        row = {
            "study_name": self.study_name,
            "claim": _claim_id(what),
            "what": what,
            "trial_number": trial_number,
            "worker_id": self.id,
            "claimed_at": _now(),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(CLAIMS).values(**row))
            return Claim(trial_number, self.id)
        except IntegrityError:
            return self.holder(what) or self.claim(what, trial_number)  # released meanwhile: try again

    def holder(self, what: str) -> Claim | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(CLAIMS.c.trial_number, CLAIMS.c.worker_id).where(
                    CLAIMS.c.study_name == self.study_name, CLAIMS.c.claim == _claim_id(what)
                )
            ).first()
        return None if row is None else Claim(row.trial_number, row.worker_id)

    def take_over(self, what: str, stale: Claim, trial_number: int | None = None) -> bool:
        """Take ``what`` from a holder whose trial failed or whose worker died; False if someone was quicker."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(CLAIMS)
                .where(
                    CLAIMS.c.study_name == self.study_name,
                    CLAIMS.c.claim == _claim_id(what),
                    CLAIMS.c.worker_id == stale.worker_id,
                    CLAIMS.c.trial_number.is_(None)
                    if stale.trial_number is None
                    else CLAIMS.c.trial_number == stale.trial_number,
                )
                .values(trial_number=trial_number, worker_id=self.id, claimed_at=_now())
            )
        return result.rowcount == 1

    def release(self, what: str, trial_number: int | None = None) -> None:
        """Give up a claim this worker holds (a failed trial), so another may train it at once."""
        with self._engine.begin() as connection:
            connection.execute(
                delete(CLAIMS).where(
                    CLAIMS.c.study_name == self.study_name,
                    CLAIMS.c.claim == _claim_id(what),
                    CLAIMS.c.worker_id == self.id,
                )
            )

    def claim_is_stale(self, claim: Claim, holder: TrialRecord | None) -> bool:
        """A claim whose trial failed (or is missing), or whose worker is gone, may be taken over."""
        if claim.trial_number is not None and (holder is None or holder.status in (Status.FAILED, Status.SURPLUS)):
            return True
        return not self.alive(claim.worker_id)


def _claim_id(what: str) -> str:
    return hashlib.sha256(what.encode()).hexdigest()


def _now() -> datetime:
    """UTC without a time zone: what SQLite and PostgreSQL both store and give back alike."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _naive_utc(moment: datetime) -> datetime:
    """Optuna stores trial times as naive local time; as naive UTC."""
    aware = moment if moment.tzinfo else moment.astimezone()
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def _machine() -> str:
    """This host, boot and process namespace: a pid is meaningful only where all three match (not across containers)."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    boot_id = boot.read_text().strip() if boot.is_file() else ""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{boot_id}/{namespace}"


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a zombie (ended, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # Linux: the state letter follows the command name in parentheses
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
