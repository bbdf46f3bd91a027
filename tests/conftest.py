"""Shared fixtures: a tiny synthetic dataset made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ge_nas.data import make_synthetic_dataset

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A handful of 64 px images: enough for Ultralytics to train and validate one epoch."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "tiny", n_train=16, n_val=8, imgsz=64)
