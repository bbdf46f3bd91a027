"""Ctrl-C and SIGTERM that stop a search even when a library swallows the first KeyboardInterrupt.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread happens to be,
and some code catches everything (a bare ``except:`` in an optional import, say): a Ctrl-C
that lands there is lost, and on a loaded machine, where imports and set-up take longer,
that happens (a search trained on for minutes after its Ctrl-C). So ge-nas records every
SIGINT and SIGTERM it receives before raising, and checks the record at safe points (before
each trial, after each epoch): an interrupt that was swallowed is raised again there.
Nothing here waits on a thread or a lock.

Example:
    >>> with interrupts_recorded():  # doctest: +SKIP
    ...     for epoch in range(10):
    ...         raise_if_interrupted()
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["interrupts_recorded", "raise_if_interrupted", "record_interrupts"]

_received: list[int] = []  # the signals received, in order; cleared when recording stops


def record_interrupts() -> None:
    """From now on SIGINT and SIGTERM raise KeyboardInterrupt and are remembered (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def interrupts_recorded() -> Iterator[None]:
    """:func:`record_interrupts` for a block; the previous handlers are restored after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    record_interrupts()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived, even if the one raised then was swallowed."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[0]}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt
