"""Every setting of a search, its defaults, and what must not change when a study is resumed.

The command line and the Python API build a search's settings the same way, with
:func:`build_config`: it applies the defaults (those of the built-in demo when no dataset
is given, those for a user's dataset otherwise), checks every option, and returns a
:class:`SearchConfig`. A study stores :meth:`SearchConfig.comparable_settings` and refuses
to resume with others, because its results would no longer compare.

Example:
    >>> config = build_config(trials=4, epochs=1)  # doctest: +SKIP
    >>> config.proxy.epochs, config.parent_epochs  # doctest: +SKIP
    (1, 20)
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ge_nas.errors import InputError
from ge_nas.storage.database import STUDIES_DIR, check_study_name, default_storage_url
from ge_nas.storage.records import ACCURACY_NAMES, COST_NAMES, Strategy

if TYPE_CHECKING:
    import optuna

    from ge_nas.search.pareto_pruner import ParetoPruner
    from ge_nas.space.search_space import SearchSpace

__all__ = [
    "BASELINE_SEEDS",
    "CALIBRATION_BATCHES",
    "CONFIRM",
    "DEFAULT_SAMPLER",
    "DEMO",
    "FINE_TUNE",
    "GFLOPS_COUNT",
    "LATENCY_BACKENDS",
    "MAX_SEEDS",
    "PRUNERS",
    "SAMPLERS",
    "STRATEGIES",
    "SUPERNET_EPOCHS",
    "SUPERNET_TRIALS",
    "USER_DATASET",
    "DatasetDefaults",
    "FineTune",
    "Objectives",
    "ProxySettings",
    "SearchConfig",
    "SupernetSettings",
    "build_config",
    "check_objectives_fit",
    "check_option",
    "file_sha256",
    "fine_tune_recipe",
    "training_seed",
    "workers_for_devices",
]

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "random", "gp", "grid")
# --sampler's default per --strategy. A supernet scores a candidate in seconds and its best score
# is usually the baseline's, which TPE then proposes again and again (1,349 of 1,580 proposals in
# the README's run); NSGA-II, the evolutionary search of single-path one-shot NAS, scored 200
# distinct architectures in 200 proposals.
DEFAULT_SAMPLER: dict[str, str] = {Strategy.PROXY.value: "tpe", Strategy.SUPERNET.value: "nsga2"}
# --strategy: how exploring trials measure accuracy (see ge_nas.storage.records.Strategy).
STRATEGIES: tuple[str, ...] = tuple(strategy.value for strategy in Strategy)
PRUNERS: tuple[str, ...] = ("auto", "median", "hyperband", "pareto", "none")
# --latency-backend: the runtime latency is measured in (see ge_nas.yolo.latency).
LATENCY_BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "openvino", "tensorrt")
# How GFLOPs are counted, stored with a study: earlier versions left θ−'s operations out, so a
# study counted the old way is not resumed with the new count (its fronts would mix the two).
GFLOPS_COUNT = "ultralytics thop + every GE operation"
DEFAULT_SPACE = "yolov8n_ge"
DEFAULT_OBJECTIVES = "map50-95,gflops"
# The built-in dataset's name in default study names.
DEMO_DATASET_LABEL = "synthetic"
# Dataset file names that say nothing about the data: a default study name takes the folder's name instead.
GENERIC_DATASET_NAMES = frozenset({"data", "dataset"})
# What Ultralytics (and torch's generators) accept as a seed.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class FineTune:
    """How a model that inherited a trained parent trains: a proxy, or ``ge-nas train --weights``.

    Ultralytics' "auto" optimizer (AdamW at about 1.4e-3 on small runs) and its warm-up (bias
    learning rate 0.1) suit training from scratch; on inherited weights they wreck the parent
    in the first epoch (measured on the built-in data: parent 0.63 mAP50-95, 0.013 after one
    epoch at the auto settings, 0.62 at ``lr0`` 2e-4 without warm-up). So inherited weights
    train gently, and the new GE units, which must learn within a few epochs, apart from them.

    Args:
        optimizer: Ultralytics' optimizer name.
        lr0: the inherited weights' learning rate (no warm-up; Ultralytics' linear decay).
        new_unit_lr_factor: the GE units' parameters train this many times faster (their
            own optimizer parameter groups, same schedule). At 1x a θ and a θ+ unit at one
            point scored the same to four decimals after a proxy: the units barely moved.
        gate_bias: new GE units start with the gate ``sigmoid(gate_bias)`` everywhere (see
            :meth:`ge_nas.layers.gather_excite.GatherExcite.open_gate`): near 1, the candidate
            starts close to its parent, but the gate's gradient shrinks as ``s(1 - s)``.
        units_alone_epochs: the first epochs train the new GE units alone, on the inherited
            layers frozen (weights and BatchNorm statistics), before everything trains jointly.
    """

    optimizer: str = "AdamW"
    lr0: float = 2e-4
    new_unit_lr_factor: float = 10.0
    gate_bias: float = 3.0
    units_alone_epochs: int = 0

    def overrides(self) -> dict[str, Any]:
        """Ultralytics' training arguments this recipe sets."""
        return {"optimizer": self.optimizer, "lr0": self.lr0, "warmup_epochs": 0}


# The recipe every inherited proxy of a search trains with (``benchmarks/proxy_fidelity.py`` compares others).
FINE_TUNE = FineTune()


def fine_tune_recipe(recipe: FineTune = FINE_TUNE) -> str:
    """How inherited proxies train, in one line; a study stores it, so proxies of another recipe never mix."""
    settings = " ".join(f"{k}={v}" for k, v in recipe.overrides().items())
    return (
        f"{settings} nbs=batch new_units_lr_x{recipe.new_unit_lr_factor:g} gate_bias={recipe.gate_bias:g} "
        f"units_alone_epochs={recipe.units_alone_epochs}"
    )


@dataclass(frozen=True)
class DatasetDefaults:
    """The defaults that depend on the data: the built-in demo's, or those for a user's dataset."""

    trials: int
    epochs: int
    imgsz: int
    parent_epochs: int  # the parent's epochs (at most, with a patience)
    parent_patience: int  # stop the parent after this many epochs without a better validation; 0: never


# The demo: short proxies that inherit from a parent trained once (not needed with --weights).
DEMO = DatasetDefaults(trials=20, epochs=4, imgsz=128, parent_epochs=20, parent_patience=0)
# A user's dataset without --weights: a parent trained until its validation mAP stops improving
# (proxies from scratch rank noise: mAP stays 0 for the first dozen epochs on easy data).
USER_DATASET = DatasetDefaults(trials=10, epochs=4, imgsz=640, parent_epochs=100, parent_patience=10)
# --strategy supernet: the supernet trains this many epochs once per study (inheriting the parent), and a
# search scores this many candidates unless --trials says otherwise.
SUPERNET_EPOCHS = 30
SUPERNET_TRIALS = 200
# Training batches each candidate's BatchNorm statistics are recalibrated on (Guo et al. use a few thousand
# images on ImageNet; 4 batches of 16 are half the built-in training set).
CALIBRATION_BATCHES = 4
# Seeds: the baseline's (the noise floor), how many front candidates get more, and how many at most.
BASELINE_SEEDS = 3
CONFIRM = 3
MAX_SEEDS = 5


@dataclass(frozen=True)
class Objectives:
    """Accuracy (maximised) against zero or more costs (minimised)."""

    accuracy: str = "map50-95"
    costs: tuple[str, ...] = ("gflops",)

    @classmethod
    def parse(cls, text: str) -> Objectives:
        """``"map50-95,gflops,latency"``: one accuracy name, then cost names."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        accuracy = [n for n in names if n in ACCURACY_NAMES]
        costs = [n for n in names if n in COST_NAMES]
        unknown = [n for n in names if n not in ACCURACY_NAMES + COST_NAMES]
        if unknown or len(accuracy) != 1 or len(set(costs)) != len(costs):
            raise InputError(
                f"--objectives {text!r}: give exactly one accuracy ({' or '.join(ACCURACY_NAMES)}) "
                f"and any distinct costs from {', '.join(COST_NAMES)}, e.g. map50-95,gflops"
            )
        return cls(accuracy[0], tuple(costs))

    @property
    def names(self) -> list[str]:
        return [self.accuracy, *self.costs]

    @property
    def directions(self) -> list[str]:
        return ["maximize"] + ["minimize"] * len(self.costs)

    @property
    def multi(self) -> bool:
        return bool(self.costs)


@dataclass(frozen=True)
class ProxySettings:
    """How a short proxy run trains: the same for every candidate of a study."""

    epochs: int = 1
    imgsz: int = 64
    batch: int = 16
    fraction: float = 1.0
    device: str = "cpu"
    seed: int = 0
    workers: int = 0  # data loader workers per training
    # Ultralytics' mosaic augmentation; off for data whose class is set by a cue anywhere in the
    # image (the built-in context data): a mosaic tiles four images, four cues, into one.
    mosaic: bool = True


@dataclass(frozen=True)
class SupernetSettings:
    """How a ``--strategy supernet`` search trains its supernet and scores candidates with it."""

    epochs: int = SUPERNET_EPOCHS
    calibration_batches: int = CALIBRATION_BATCHES

    def comparable(self) -> dict[str, Any]:
        """What a resumed supernet study must match: supernet scores of other settings do not compare."""
        return {
            "epochs": self.epochs,
            "calibration_batches": self.calibration_batches,
            "paths": "a unit at each point with probability 1/2, uniform choice",
        }


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search run needs; build it with :func:`build_config`, which checks every option.

    Built directly, the seed settings default to a single seed (no noise floor, no
    confirmation): cheap, for tests and scripts that want exactly that; ``build_config``
    applies :data:`BASELINE_SEEDS`, :data:`CONFIRM` and :data:`MAX_SEEDS`.
    """

    space: SearchSpace
    data_yaml: Path
    objectives: Objectives
    proxy: ProxySettings
    trials: int
    study_name: str
    storage_url: str
    workdir: Path
    sampler: str = "tpe"
    pruner: str | optuna.pruners.BasePruner | ParetoPruner = "auto"  # a name, or a configured pruner
    seed: int = 0
    timeout: float | None = None
    constraints: dict[str, float] = field(default_factory=dict)  # cost name -> largest allowed value
    max_failures: int = 5
    verbose: bool = False
    workers: int = 1  # worker processes on this machine
    weights: Path | None = None  # a pretrained checkpoint of the base model to inherit from
    parent_epochs: int = 0  # or: train the base this many epochs once per study, and inherit from it
    parent_patience: int = 0  # stop the parent's training after this many epochs without improvement
    baseline_seeds: int = 1  # seeds of the baseline: the noise floor every gain is read against
    confirm: int = 0  # front candidates that get further seeds after the exploring trials
    max_seeds: int = 1  # seeds at most per confirmed candidate (and for the baseline)
    latency_backend: str = "torch"  # the runtime latency is measured in
    keep_exports: bool = False  # keep the ONNX exports (workdir/exports) after timing them
    strategy: str = Strategy.PROXY.value  # how exploring trials measure accuracy: proxies, or a supernet
    supernet: SupernetSettings = field(default_factory=SupernetSettings)  # used with strategy "supernet"

    @property
    def latency_decides(self) -> bool:
        """Whether latency ranks or limits candidates (an objective or a budget): then it is timed to full precision."""
        return bool({"latency", "latency-ratio"} & {*self.objectives.costs, *self.constraints})

    @property
    def uses_supernet(self) -> bool:
        return self.strategy == Strategy.SUPERNET.value

    @property
    def supernet_path(self) -> Path:
        """Where the study's trained supernet is kept (its run, resumable, in ``workdir/supernet``)."""
        return self.workdir / "supernet.pt"

    @property
    def exports(self) -> Path:
        """Where ONNX exports for latency are cached, one per architecture."""
        return self.workdir / "exports"

    def comparable_settings(self) -> dict[str, Any]:
        """What must not change when a study is resumed, or its results stop being comparable.

        The dataset is identified by its resolved YAML path, the YAML's hash and each split's
        image list, so another dataset whose file is also called ``data.yaml`` is refused. (It
        lists the dataset and hashes the parent: compute it once per run.)
        """
        from ge_nas.data.user_dataset import dataset_fingerprint  # reads the dataset the way Ultralytics will

        settings = {
            "space": self.space.fingerprint,
            "space_name": self.space.name,
            "dataset": dataset_fingerprint(self.data_yaml),
            # mosaic only when off: studies made before the option resume as they were
            "proxy": {
                k: v
                for k, v in vars(self.proxy).items()
                if k not in ("device", "workers") and not (k == "mosaic" and v)
            },
            "constraints": dict(sorted(self.constraints.items())),
            "parent": self._parent_setting(),
            "fine_tune": fine_tune_recipe() if self.inherits else None,
            "costs": {"gflops": GFLOPS_COUNT, "latency_backend": self.latency_backend},
        }
        if self.uses_supernet:  # absent for proxy searches: studies made before strategies resume as they were
            settings.update(strategy=self.strategy, supernet=self.supernet.comparable())
        return settings

    @property
    def inherits(self) -> bool:
        """Whether candidates start from a parent's weights (given, or trained once per study)."""
        return self.weights is not None or self.parent_epochs > 0

    def _parent_setting(self) -> str:
        if self.weights is not None:
            return f"weights sha256:{file_sha256(self.weights)}"
        if not self.parent_epochs:
            return "none (from scratch)"
        if self.parent_patience:
            return f"trained until no better for {self.parent_patience} epochs (at most {self.parent_epochs})"
        return f"trained {self.parent_epochs} epochs"


def build_config(
    *,
    dataset: Path | None = None,
    space: str | Path = DEFAULT_SPACE,
    study: str | None = None,
    storage: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    objectives: str = DEFAULT_OBJECTIVES,
    sampler: str | None = None,
    pruner: str = "auto",
    seed: int = 0,
    epochs: int | None = None,
    weights: Path | None = None,
    parent_epochs: int | None = None,
    imgsz: int | None = None,
    batch: int = 16,
    fraction: float = 1.0,
    mosaic: bool = True,
    device: str | None = None,
    workers: int | None = None,
    loader_workers: int = 0,
    max_gflops: float | None = None,
    max_params: float | None = None,
    max_latency: float | None = None,
    max_memory: float | None = None,
    latency_backend: str = "torch",
    keep_exports: bool = False,
    max_failures: int = 5,
    verbose: bool = False,
    baseline_seeds: int = BASELINE_SEEDS,
    confirm: int = CONFIRM,
    max_seeds: int = MAX_SEEDS,
    strategy: str = Strategy.PROXY.value,
    supernet_epochs: int | None = None,
) -> SearchConfig:
    """A search's settings from ``ge-nas search``'s options; None means the default for the data.

    With no ``dataset`` the search runs on the built-in synthetic dataset (generated here on
    first use) with the demo's defaults (:data:`DEMO`); otherwise the dataset is checked and
    :data:`USER_DATASET`'s defaults apply. Several devices mean one worker process per device
    unless ``workers`` says otherwise: one training never spans devices (Ultralytics would
    start distributed training, without ge-nas's proxy trainer).

    Raises:
        InputError: an option or file is bad; the message names it and the fix.
    """
    # Loading a space builds its base model: torch and Ultralytics are imported only now, so
    # that reading the defaults above (``ge-nas search --help``) stays quick.
    from ge_nas.data.synthetic import TASKS as SYNTHETIC_TASKS
    from ge_nas.data.synthetic import make_synthetic_dataset
    from ge_nas.data.user_dataset import check_dataset
    from ge_nas.space.search_space import load_space
    from ge_nas.yolo.devices import check_device, devices_of
    from ge_nas.yolo.latency import check_backend

    budgets = (("gflops", max_gflops), ("params", max_params), ("latency", max_latency), ("memory", max_memory))
    for cost, limit in budgets:
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            raise InputError(f"--max-{cost} {limit:g}: a budget is a positive number; leave it out for no budget")
    check_option("--strategy", strategy, STRATEGIES)
    if supernet_epochs is not None and (strategy != Strategy.SUPERNET.value or supernet_epochs < 1):
        raise InputError(f"--supernet-epochs {supernet_epochs}: give 1 or more, with --strategy supernet")
    checked_device = check_device(device)
    check_backend(check_option("--latency-backend", latency_backend, LATENCY_BACKENDS), checked_device)
    loaded = load_space(space)
    parsed_objectives = Objectives.parse(objectives)
    check_objectives_fit(parsed_objectives, loaded.name, loaded.task)
    if strategy == Strategy.SUPERNET.value and loaded.task != "detect":
        raise InputError(
            f"--strategy supernet supports detection bases for now, and space {loaded.name} is a {loaded.task} "
            "model: use --strategy proxy"
        )
    if weights is not None and not weights.is_file():
        raise InputError(f"--weights {weights}: no such file; give a checkpoint (.pt) of the search space's base model")
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed {seed}: use a whole number from 0 to {MAX_SEED}")
    if not 1 <= baseline_seeds <= max_seeds or confirm < 0:
        raise InputError(
            f"--baseline-seeds {baseline_seeds}, --confirm {confirm}, --max-seeds {max_seeds}: use at least one "
            "baseline seed, no more than --max-seeds, and --confirm 0 or more"
        )
    stride = max(layer.stride for layer in loaded.layers)
    if imgsz is not None and imgsz % stride:
        lower, upper = max(stride, imgsz // stride * stride), (imgsz // stride + 1) * stride
        raise InputError(
            f"--imgsz {imgsz}: use a multiple of {stride}, the base model's largest stride (e.g. {lower} or {upper})"
        )
    devices = devices_of(checked_device)
    workers = workers_for_devices(devices, workers)
    defaults = DEMO if dataset is None else USER_DATASET
    # --parent-epochs N: exactly N epochs; unset: the defaults (none with --weights).
    parent_patience = defaults.parent_patience if parent_epochs is None and weights is None else 0
    if parent_epochs is None:
        parent_epochs = 0 if weights is not None else defaults.parent_epochs
    if strategy == Strategy.SUPERNET.value and weights is None and not parent_epochs:
        raise InputError(
            "--strategy supernet --parent-epochs 0: the supernet starts from a trained parent; give --weights "
            "BASE.pt or --parent-epochs N (N > 0)"
        )
    if strategy == Strategy.SUPERNET.value:
        trials = trials or SUPERNET_TRIALS
    if dataset is None:
        if loaded.task not in SYNTHETIC_TASKS:
            raise InputError(
                f"space {loaded.name}: the built-in dataset has boxes and outlines, not what a {loaded.task} model "
                f"learns; give --dataset with {loaded.task} labels"
            )
        imgsz = imgsz or defaults.imgsz
        data_yaml, dataset_label = make_synthetic_dataset(imgsz=imgsz, task=loaded.task), DEMO_DATASET_LABEL
    else:
        imgsz = imgsz or defaults.imgsz
        data_yaml = check_dataset(dataset)
        dataset_label = data_yaml.parent.name if data_yaml.stem in GENERIC_DATASET_NAMES else data_yaml.stem
    name = check_study_name(study or f"{loaded.name}-{_name_part(dataset_label)}")
    return SearchConfig(
        space=loaded,
        data_yaml=data_yaml,
        objectives=parsed_objectives,
        proxy=ProxySettings(
            epochs=epochs or defaults.epochs,
            imgsz=imgsz,
            batch=batch,
            fraction=fraction,
            mosaic=mosaic,
            device=",".join(devices),
            seed=seed,
            workers=loader_workers,
        ),
        trials=trials or defaults.trials,
        study_name=name,
        storage_url=storage or default_storage_url(name),
        workdir=STUDIES_DIR / name,
        sampler=check_option("--sampler", sampler or DEFAULT_SAMPLER[strategy], SAMPLERS),
        pruner=check_option("--pruner", pruner, PRUNERS),
        seed=seed,
        timeout=timeout,
        constraints={cost: limit for cost, limit in budgets if limit is not None},
        max_failures=max_failures,
        verbose=verbose,
        weights=weights,
        parent_epochs=parent_epochs,
        parent_patience=parent_patience,
        workers=workers,
        baseline_seeds=baseline_seeds,
        confirm=confirm,
        max_seeds=max_seeds,
        latency_backend=latency_backend,
        keep_exports=keep_exports,
        strategy=strategy,
        supernet=SupernetSettings(epochs=supernet_epochs or SUPERNET_EPOCHS),
    )


def check_objectives_fit(objectives: Objectives, space_name: str, task: str) -> None:
    """Refuse a mask accuracy for a space whose base has no segmentation head.

    Raises:
        InputError: naming the accuracy, the space's task and the fix.
    """
    if objectives.accuracy.startswith("mask-") and task != "segment":
        raise InputError(
            f"--objectives {objectives.accuracy}: mask mAP needs a segmentation base, and space {space_name} is a "
            f"{task} model; use a space whose base is a -seg model (e.g. yolo11n-seg.yaml) or "
            f"{objectives.accuracy.removeprefix('mask-')}"
        )


def workers_for_devices(devices: list[str], workers: int | None) -> int:
    """How many worker processes: ``workers``, or one per device; never one worker on several devices.

    One training never spans devices: given ``0,1``, Ultralytics would start distributed
    training, without ge-nas's proxy trainer and its per-epoch records.

    Raises:
        InputError: one worker asked for, several devices given.
    """
    if workers is None:
        return len(devices)
    if workers == 1 and len(devices) > 1:
        raise InputError(
            f"--device {','.join(devices)} with --workers 1: one worker trains on one device; give "
            f"--workers {len(devices)} (one per device) or a single device"
        )
    return workers


def _name_part(label: str) -> str:
    """A folder or file name as it may appear in a study name (letters, digits, '_', '-', '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "dataset"


def training_seed(seed: int, seed_index: int) -> int:
    """The training seed of seed ``seed_index`` of every architecture in a search run with ``--seed seed``.

    Seed 0 is ``seed`` itself; further seeds are drawn from it, so two searches with
    different ``--seed`` share no training seed.
    """
    if seed_index == 0:
        return seed
    return int(np.random.SeedSequence([seed, seed_index]).generate_state(1)[0]) % (MAX_SEED + 1)


def check_option(option: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; else an input error naming the option and the choices."""
    if value not in allowed:
        raise InputError(f"{option} {value!r}: use one of {', '.join(allowed)}")
    return value


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
