"""Training architectures longer than a proxy: the front's best for proxy fidelity, an exported YAML in full.

A search is only as good as its proxy. :func:`retrain` trains the K most accurate
architectures of front 1 and the baseline from scratch with a longer schedule, stores
those results in the study (user attribute ``retrain``, keyed by epoch count and trial
number, beside the proxy results), and reports how well the proxy ranked them: Kendall
tau and Spearman rank correlation between proxy accuracy and retrained accuracy.

:func:`train` is ``ge-nas train``: an exported architecture trained with Ultralytics' own
recipe, from scratch, from the search's parent, or from its own weights cut from a supernet
(:func:`supernet_weights`, ``ge-nas export --weights-from-supernet``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml

from ge_nas.data.user_dataset import check_dataset
from ge_nas.errors import InputError
from ge_nas.ranking.correlation import kendall, spearman
from ge_nas.ranking.fronts import rank_study
from ge_nas.search.config import ProxySettings
from ge_nas.space.candidate import Candidate
from ge_nas.storage.studies import SUPERNET, stored_checkpoint, stored_dataset, stored_settings
from ge_nas.yolo.devices import check_device
from ge_nas.yolo.inheritance import inheritance_for
from ge_nas.yolo.model_files import check_model_yaml
from ge_nas.yolo.supernet import SupernetScorer, save_candidate_checkpoint
from ge_nas.yolo.training import train_full, train_proxy

__all__ = [
    "DEFAULT_PROJECT",
    "RetrainReport",
    "RetrainRow",
    "retrain",
    "supernet_weights",
    "train",
]

DEFAULT_PROJECT = Path("runs") / "ge-nas"


@dataclass(frozen=True)
class RetrainRow:
    """One retrained architecture: its proxy accuracy and its accuracy after the long schedule."""

    trial: int
    code: str
    proxy: float
    retrained: float
    seconds: float


@dataclass(frozen=True)
class RetrainReport:
    epochs: int
    accuracy: str
    rows: list[RetrainRow]
    kendall_tau: float
    spearman: float


def retrain(
    study: optuna.Study,
    top: int,
    epochs: int,
    workdir: Path,
    data_yaml: Path | None = None,
    device: str | None = None,
    on_row: Callable[[RetrainRow], None] | None = None,
) -> RetrainReport:
    """Retrain the ``top`` most accurate front architectures and the baseline for ``epochs`` epochs.

    Results already stored for the same ``epochs`` are reused, so a larger ``--top`` later
    trains only the new ones.
    """
    settings = stored_settings(study)
    if not settings:
        raise InputError(
            f"study {study.study_name!r} was not made by ge-nas search: it has no settings to retrain with"
        )
    data_yaml = data_yaml or Path(stored_dataset(study) or "")
    if not data_yaml.is_file():
        raise InputError(f"dataset {data_yaml} of study {study.study_name!r} not found: pass --dataset PATH")
    proxy = ProxySettings(**{**settings["proxy"], "epochs": epochs, **({"device": device} if device else {})})
    ranking = rank_study(study)
    accuracy = ranking.accuracy_name
    front = sorted(ranking.front(1), key=lambda a: -(a.accuracy or 0.0))[:top]
    if not front:
        raise InputError(
            f"study {study.study_name!r} has no trained architecture to retrain (its trials failed, were pruned or "
            "were over budget); run ge-nas search until some complete"
        )
    baseline = [a for a in ranking.architectures if a.record.baseline and a.record.epochs]
    chosen = {a.record.number: a for a in [*baseline[:1], *front]}
    stored = dict(study.user_attrs.get("retrain", {}))
    results = dict(stored.get(str(epochs), {}))
    rows = []
    for number, architecture in sorted(chosen.items()):
        if str(number) not in results:
            run_dir = workdir / f"retrain-{epochs}" / f"trial-{number:05d}"
            model_yaml = run_dir / "model.yaml"
            model_yaml.parent.mkdir(parents=True, exist_ok=True)
            model_yaml.write_text(architecture.record.yaml or "")
            start = time.perf_counter()
            history = train_proxy(model_yaml, data_yaml, proxy, run_dir)
            results[str(number)] = {**history[-1], "seconds": time.perf_counter() - start}
            stored[str(epochs)] = results
            study.set_user_attr("retrain", stored)  # after each run, so an interruption keeps what finished
        result = results[str(number)]
        row = RetrainRow(
            number, architecture.record.code or "?", architecture.accuracy, result[accuracy], result["seconds"]
        )
        rows.append(row)
        if on_row is not None:
            on_row(row)
    proxy, retrained = [r.proxy for r in rows], [r.retrained for r in rows]
    tau, rho = kendall(proxy, retrained), spearman(proxy, retrained)
    correlations = dict(study.user_attrs.get("retrain_correlation", {}))
    correlations[str(epochs)] = {"kendall_tau": tau, "spearman": rho, "n": len(rows)}
    study.set_user_attr("retrain_correlation", correlations)
    return RetrainReport(epochs, accuracy, rows, tau, rho)


def train(
    model_yaml: Path,
    data_yaml: Path,
    epochs: int,
    imgsz: int = 640,
    batch: int = 16,
    device: str | None = None,
    project: Path | None = None,
    name: str | None = None,
    verbose: bool = True,
    weights: Path | None = None,
    mosaic: bool = True,
) -> Path:
    """Fully train an exported architecture with Ultralytics; return the path of its ``best.pt``.

    With ``weights`` (a checkpoint of the base model, e.g. a search's ``parent.pt``) every
    base layer starts from the parent and GE units start with an open gate, as in the search;
    a checkpoint of this very architecture (``ge-nas export --weights-from-supernet``) starts
    every layer, units included, where it was.

    ``project`` (default ``runs/ge-nas``) is taken relative to the current folder, where
    Ultralytics would put a relative one under its own runs directory; ``name`` defaults
    to the YAML's stem. The checkpoint loads back with
    ``import ge_nas; from ultralytics import YOLO; YOLO(path)``.
    """
    if not model_yaml.is_file():
        raise InputError(f"model {model_yaml}: no such file; export one with ge-nas export -o {model_yaml}")
    inheritance = None
    if weights is not None:
        if not weights.is_file():
            raise InputError(f"--weights {weights}: no such file; give a checkpoint (.pt) of the base model")
        inheritance = inheritance_for(yaml.safe_load(model_yaml.read_text()), weights)
    return train_full(
        model_yaml.resolve(),
        check_dataset(data_yaml),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=check_device(device),
        project=(project or DEFAULT_PROJECT).resolve(),
        name=name or model_yaml.stem,
        verbose=verbose,
        inheritance=inheritance,
        mosaic=mosaic,
    )


def supernet_weights(study: optuna.Study, key: str, model_yaml: str, output: Path) -> Path:
    """Save the architecture ``key`` (model YAML text ``model_yaml``) with the weights its supernet score was read on.

    Its path's weights from the study's supernet, BatchNorm recalibrated on the study's
    training data as when it was scored: a checkpoint ``ge-nas train --weights`` fine-tunes
    (and Ultralytics loads).

    Raises:
        InputError: the study has no supernet, or its supernet or dataset file is gone.
    """
    name = study.study_name
    stored = stored_checkpoint(study, SUPERNET)
    if not stored:
        raise InputError(
            f"--weights-from-supernet: study {name!r} searched with proxies and has no supernet; export without it"
        )
    supernet = Path(stored["path"])
    data_yaml = Path(stored_dataset(study) or "")
    for what, path in (("supernet", supernet), ("dataset", data_yaml)):
        if not path.is_file():
            raise InputError(f"--weights-from-supernet: the {what} {path} of study {name!r} is gone; rerun its search")
    settings = stored_settings(study)
    model = yaml.safe_load(model_yaml)
    check_model_yaml(model, f"study {name!r}")
    scorer = SupernetScorer(
        supernet, data_yaml, ProxySettings(**settings["proxy"]), settings["supernet"]["calibration_batches"]
    )
    origin = {"study": name, "key": key, "supernet": stored, "dataset": str(data_yaml)}
    return save_candidate_checkpoint(scorer.candidate_model(Candidate.from_key(key), model), output, origin)
