"""Ultralytics' output under ge-nas: quiet unless asked, and no font look-up (it would go online)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from ultralytics.data import utils as data_utils
from ultralytics.utils import LOGGER

__all__ = ["no_font_download", "quiet"]


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Ultralytics' own logging (per-batch bars, summaries) only when ``verbose``, whatever its default level."""
    level = LOGGER.level
    LOGGER.setLevel(logging.INFO if verbose else logging.ERROR)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


@contextlib.contextmanager
def no_font_download() -> Iterator[None]:
    """Skip the font look-up that every dataset check makes (an HTTP request when offline).

    ge-nas never plots, so the font is never needed; the patch lasts only while
    ge-nas itself trains, and a user's own Ultralytics runs are left as they are.
    """
    original = data_utils.check_font
    data_utils.check_font = lambda *args, **kwargs: None
    try:
        yield
    finally:
        data_utils.check_font = original
