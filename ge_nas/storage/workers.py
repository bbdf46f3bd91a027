"""Which worker runs a trial, and failing the trials of workers that died mid-trial.

A worker killed mid-trial (SIGKILL, out of memory, a crash) leaves its trial RUNNING.
Heartbeats catch that everywhere, but only after their grace period; a trial run by a dead
process on this very machine is known to be orphaned at once.
"""

from __future__ import annotations

import os
import socket

import optuna
from optuna.trial import TrialState

from ge_nas.storage.records import mark_failed, read_record

__all__ = ["fail_orphaned_trials", "fail_stale_trials", "worker_id"]


def worker_id() -> str:
    """``host:pid`` of this process, stored on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark failed the running trials whose worker process on this machine no longer exists."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(read_record(trial).worker or "").rpartition(":")
        if worker_host != host or not pid.isdigit() or _process_alive(int(pid)):
            continue
        mark_failed(study, trial, "its worker process ended mid-trial (killed?)")
        failed.append(trial.number)
    return failed


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the trials of dead workers: on this machine at once, elsewhere after their heartbeat lapses."""
    fail_orphaned_trials(study)
    optuna.storages.fail_stale_trials(study)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
