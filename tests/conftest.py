"""Shared fixtures: a tiny synthetic dataset and a real search on it, made once per test session."""

from __future__ import annotations

import functools
import glob
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from ge_nas.cli import main
from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.layers.registry import unit_param_count
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import run_search
from ge_nas.space.candidate import Candidate
from ge_nas.space.search_space import SearchSpace, load_space

ASSETS = Path(__file__).parent / "assets"

# built_once(name, build): see the fixture.
BuildOnce = Callable[[str, Callable[[Path], None]], Path]


@dataclass(frozen=True)
class CommandResult:
    """What a ``ge-nas`` command printed, and its exit status."""

    returncode: int
    stdout: str
    stderr: str


def expected_unit_params(space: SearchSpace, candidate: Candidate) -> int:
    """The units' own parameters, by their papers' formulas: one unit after a layer, or one per bottleneck inside."""
    total = 0
    for index, placement in candidate.placements:
        layer = space.point(index).layer
        if placement.mode == "after":
            total += unit_param_count(layer.channels, placement.variant, placement.extent)
        else:
            unit = unit_param_count(layer.hidden_channels, placement.variant, placement.extent)
            total += layer.bottlenecks * unit
    return total


@pytest.fixture
def ge_nas_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CommandResult]:
    """Run ``ge-nas ARGS`` in this process, from folder ``cwd``: the command line as a user types it,
    without a new interpreter importing torch each time (fast enough for dozens of bad-input cases)."""

    def run(*args: str, cwd: Path) -> CommandResult:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["ge-nas", *args])
        environment = dict(os.environ)
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            os.environ.clear()
            os.environ.update(environment)
        captured = capsys.readouterr()
        return CommandResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def built_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> BuildOnce:
    """``built_once(name, build)``: a folder that ``build`` fills once per test run, then only read.

    The suite runs in two processes (pytest-xdist, see pyproject.toml), and each has its own
    session fixtures; the costly ones (a trained parent, a confirmed search) would be built
    twice. The first process to ask builds the folder in the run's shared temporary folder,
    under a file lock; the other waits and reuses it (pytest-xdist's recipe for this).
    """
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # a run's workers share the parent

    def build_once(name: str, build: Callable[[Path], None]) -> Path:
        folder = root / name
        with FileLock(str(root / f"{name}.lock")):
            if not (folder / ".built").is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a build that failed midway
                folder.mkdir(parents=True)
                build(folder)
                (folder / ".built").touch()
        return folder

    return build_once


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A handful of 64 px images: enough for Ultralytics to train and validate one epoch."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "tiny", n_train=16, n_val=8, imgsz=64)


@pytest.fixture(scope="session")
def tiny_segment_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset's images with outlines (polygons) as labels: for segmentation."""
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("data") / "tiny-segment", n_train=16, n_val=8, imgsz=64, task="segment"
    )


@pytest.fixture(scope="session")
def unlearnable_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset every label of which names class 7 of 3: Ultralytics drops every image, so every trial fails.

    ``ge-nas search`` refuses it up front; through the Python API (which checks no dataset)
    it is how a test makes trials fail.
    """
    data = make_synthetic_dataset(tmp_path_factory.mktemp("data") / "unlearnable", n_train=16, n_val=8, imgsz=64)
    for labels in (data.parent / "labels").rglob("*.txt"):
        labels.write_text("".join("7" + line[1:] + "\n" for line in labels.read_text().splitlines()))
    return data


TINY_STUDY = "tiny"
# A space of three architectures after the SPPF: none, θ− global, θ+ global.
SPACE = "base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus, theta-plus]\nextents: [global]\n"
# A search without a parent and with one seed per architecture (no noise floor, no confirmation): for
# tests about something else. Options given after these win (the command line takes the last value).
QUICK = ("--baseline-seeds", "1", "--confirm", "0", "--parent-epochs", "0")


@pytest.fixture(scope="session")
def tiny_search(tiny_dataset: Path, built_once: BuildOnce) -> Path:
    """The SQLite file of a real 4-trial search over 3 architectures (the SPPF with no GE, θ− or θ).

    With seed 0 the random sampler draws all three and then the baseline again, so one
    trial reuses a result. One epoch from scratch scores the same for all three, and θ− costs
    a few GFLOPs and θ more, so they take fronts 1 (the baseline), 2 (θ−) and 3 (θ).
    The search refreshed its ge_nas_* tables itself. Tests only read it.
    """

    def search(folder: Path) -> None:
        space = folder / "space.yaml"
        space.write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus, theta]\nextents: [global]\n")
        run_search(
            SearchConfig(
                space=load_space(space),
                data_yaml=tiny_dataset,
                objectives=Objectives("map50-95", ("gflops",)),
                proxy=ProxySettings(epochs=1, imgsz=64, batch=8),
                trials=4,
                study_name=TINY_STUDY,
                storage_url=f"sqlite:///{folder / 'study.db'}",
                workdir=folder / "work",
                sampler="random",
            )
        )

    return built_once("tiny-search", search) / "study.db"


# Queries on a study's SQLite file while a search runs in another process.
RUNNING_WITH_EPOCHS = (
    "select count(*) from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
    "where t.state = 'RUNNING' and a.key = 'epochs'"
)  # running trials that stored at least one epoch
LAST_WORKER_RUNNING_WITH_EPOCHS = (
    "select count(*) from trials t"
    " join trial_user_attributes e on e.trial_id = t.trial_id and e.key = 'epochs'"
    " join trial_user_attributes w on w.trial_id = t.trial_id and w.key = 'worker'"
    " where t.state = 'RUNNING' and w.value_json like"
    " '%:' || (select pid from ge_nas_workers order by started_at desc limit 1) || ':%'"
)  # running trials, with at least one epoch stored, of the worker process registered last
RUNNING_WITH_YAML = (
    "select count(*) from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
    "where t.state = 'RUNNING' and a.key = 'yaml'"
)  # running trials that train a new architecture (a reused one ends in milliseconds)


def count_rows(db: Path, query: str) -> int:
    """``query``'s count on ``db``; 0 while the file or its tables do not exist yet, or it is locked."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(query).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for_rows(db: Path, query: str, process: subprocess.Popen, at_least: int = 1, seconds: float = 120) -> None:
    """Poll ``db`` until ``query`` counts ``at_least`` rows; fail with ``process``'s output if it never does.

    A search that ended (or hung) before it got there is the failure to see, not the
    assert that comes after the signal a test then sends to a process already gone.
    """
    deadline = time.monotonic() + seconds
    while count_rows(db, query) < at_least:
        ended = process.poll() is not None
        if ended or time.monotonic() > deadline:
            if not ended:
                process.kill()
            stdout, stderr = process.communicate()
            state = f"ended with status {process.returncode}" if ended else f"was still running after {seconds:g} s"
            pytest.fail(
                f"{count_rows(db, query)} of {at_least} rows, and the search {state}\n"
                f"stdout:\n{stdout}\nstderr:\n{stderr}"
            )
        time.sleep(0.1)


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """Two processes that keep both cores busy while a test runs: the machine under load."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for burner in burners:
        burner.kill()
        burner.wait()


@pytest.fixture(scope="session")
def learned(built_once: BuildOnce) -> Path:
    """A folder with a built-in dataset (96 images, 96 px), ``space.yaml`` (:data:`SPACE`) and ``parent.pt``,
    a yolov8n trained on it until it detects.

    16 epochs take about 20 s here; a 1-epoch proxy inheriting it then scores mAP50 of about
    0.5 (from scratch, mAP stays 0 for the first dozen epochs). Tests add studies of their own
    beside it, each under its own name.
    """

    def train_parent(folder: Path) -> None:
        data = make_synthetic_dataset(folder / "data", n_train=96, n_val=16, imgsz=96)
        (folder / "space.yaml").write_text(SPACE)
        command = [sys.executable, "-m", "ge_nas", "search", *QUICK, "--dataset", str(data), "--space", "space.yaml"]
        command += ["--study", "parent", "--parent-epochs", "16", "--trials", "1", "--epochs", "1", "--imgsz", "96"]
        command += ["--batch", "8"]
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        shutil.copy(folder / "studies" / "parent" / "parent.pt", folder / "parent.pt")

    return built_once("learned", train_parent)


CONFIRMED_STUDY = "honest"


@pytest.fixture(scope="session")
def confirmed_search(learned: Path, built_once: BuildOnce) -> tuple[Path, CommandResult]:
    """A real search with a noise floor and confirmation, and what it printed: the SQLite file and the output.

    Over the SPPF of :data:`SPACE` (none, θ− or θ+ global, in grid order), inheriting the
    ``learned`` parent: 3 exploring trials of one epoch, then 2 more baseline seeds and the
    best front candidate confirmed to 3 seeds. About 40 s; tests only read it.
    """

    def search(folder: Path) -> None:
        args = ["search", "--dataset", str(learned / "data" / "data.yaml"), "--space", "space.yaml"]
        args += ["--study", CONFIRMED_STUDY, "--weights", "parent.pt", "--trials", "3", "--epochs", "1"]
        args += ["--imgsz", "96", "--batch", "8", "--sampler", "grid", "--baseline-seeds", "3", "--confirm", "1"]
        args += ["--max-seeds", "3"]
        result = subprocess.run([sys.executable, "-m", "ge_nas", *args], cwd=learned, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        (folder / "stdout").write_text(result.stdout)
        (folder / "stderr").write_text(result.stderr)

    printed = built_once("confirmed-search", search)
    output = CommandResult(0, (printed / "stdout").read_text(), (printed / "stderr").read_text())
    return learned / "studies" / f"{CONFIRMED_STUDY}.db", output


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
