"""Shared fixtures: a tiny synthetic dataset and a real search on it, made once per test session."""

from __future__ import annotations

import functools
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import run_search
from ge_nas.space.search_space import load_space

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A handful of 64 px images: enough for Ultralytics to train and validate one epoch."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "tiny", n_train=16, n_val=8, imgsz=64)


TINY_STUDY = "tiny"


@pytest.fixture(scope="session")
def tiny_search(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file of a real 4-trial search over 3 architectures (the SPPF with no GE, θ− or θ).

    With seed 0 the random sampler draws all three and then the baseline again, so one
    trial reuses a result. One epoch from scratch scores the same for all three, and θ− costs
    a few GFLOPs and θ more, so they take fronts 1 (the baseline), 2 (θ−) and 3 (θ).
    The search refreshed its ge_nas_* tables itself. Tests only read it.
    """
    folder = tmp_path_factory.mktemp("tiny-search")
    space = folder / "space.yaml"
    space.write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus, theta]\nextents: [global]\n")
    db = folder / "study.db"
    run_search(
        SearchConfig(
            space=load_space(space),
            data_yaml=tiny_dataset,
            objectives=Objectives("map50-95", ("gflops",)),
            proxy=ProxySettings(epochs=1, imgsz=64, batch=8),
            trials=4,
            study_name=TINY_STUDY,
            storage_url=f"sqlite:///{db}",
            workdir=folder / "work",
            sampler="random",
        )
    )
    return db


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback (Debian's package; .ci/run installs it).

    Started with initdb/pg_ctl in a temporary folder on a free port and removed afterwards,
    so tests never touch a server the machine may already run.
    """
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = Path(bindirs[-1])
    data = Path(tempfile.mkdtemp(prefix="ge-nas-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        entry = pwd.getpwnam("postgres")
        os.chown(data, entry.pw_uid, entry.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    run([*as_postgres, str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust"])
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data}"
    run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data / "db"),
            "-o",
            options,
            "-l",
            str(data / "log"),
            "-w",
            "start",
        ]
    )
    try:
        run([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "create database genas"])
        yield f"postgresql://postgres@127.0.0.1:{port}/genas"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"])
        shutil.rmtree(data, ignore_errors=True)
