"""Ctrl-C and SIGTERM that stop a search cleanly: never lost, never half-way through a database write.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread happens to be.
Two places are wrong for it:

* code that catches everything (a bare ``except:`` in an optional import, say): the Ctrl-C
  is lost, and on a loaded machine, where imports and set-up take longer, that happens (a
  search trained on for minutes after its Ctrl-C);
* the database layer (SQLAlchemy, the driver, Optuna's storage): an interrupt inside a
  commit leaves the connection in an open transaction, every later write on it fails
  ("cannot start a transaction within a transaction"), and the Ctrl-C turns into a storage
  error: the running trial is not marked interrupted and the command ends with a traceback.

So ge-nas records every SIGINT and SIGTERM it receives. Inside the database layer it only
records it; elsewhere it raises at once. The record is checked at safe points (before each
trial, after each training or validation batch, after each epoch, at each poll while waiting
for another worker, when a search ends): an interrupt that was swallowed or held back is
raised there. A database call is bounded by the storage's timeouts, so a held-back interrupt
waits seconds at most. Nothing here waits on a thread or a lock.

Example:
    >>> with interrupts_recorded():  # doctest: +SKIP
    ...     for epoch in range(10):
    ...         raise_if_interrupted()
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

__all__ = ["interrupts_recorded", "pause", "raise_if_held_back", "raise_if_interrupted", "record_interrupts"]

_received: list[int] = []  # the signals received, in order; cleared when recording stops
_held_back = False  # an interrupt arrived inside the database layer and has not been raised since

# Modules an interrupt must not cut short (names and their submodules).
_DATABASE_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "optuna.storages")


def record_interrupts() -> None:
    """From now on SIGINT and SIGTERM are remembered and raise KeyboardInterrupt (main thread only).

    Inside the database layer they are held back until the next safe point (see the module's notes).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def interrupts_recorded() -> Iterator[None]:
    """:func:`record_interrupts` for a block; the previous handlers are restored after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _held_back
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    record_interrupts()
    try:
        yield
        raise_if_held_back()  # the block's last database call may have held one back
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()
        _held_back = False


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived, even if the one raised then was swallowed."""
    global _held_back
    if _received:
        _held_back = False
        raise KeyboardInterrupt(f"signal {_received[0]}")


def pause(seconds: float) -> None:
    """A polling loop's sleep: first raise an interrupt held back during the loop's database reads.

    Such a loop waits on another worker (a twin's trial, a parent's training) and may poll for
    as long as that takes; without this its Ctrl-C would wait too.
    """
    raise_if_interrupted()
    time.sleep(seconds)


def raise_if_held_back() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived inside the database layer and was never raised.

    For the end of a command: an interrupt that was raised (and handled) is not raised twice.
    """
    if _held_back:
        raise_if_interrupted()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _held_back
    _received.append(signum)
    if _inside_database(frame):
        _held_back = True  # raised at the next safe point, after the call has finished
        return
    _held_back = False
    raise KeyboardInterrupt


def _inside_database(frame: FrameType | None) -> bool:
    """Whether the interrupted code runs in (or under) one of :data:`_DATABASE_MODULES`."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if any(name == module or name.startswith(module + ".") for module in _DATABASE_MODULES):
            return True
        frame = frame.f_back
    return False
