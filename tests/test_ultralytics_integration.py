"""GE layers in real Ultralytics models: built from YAML, run, trained, and offline."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

import ge_nas  # noqa: F401  (registers GatherExcite with Ultralytics)
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.search.config import ProxySettings
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.training import train_proxy
from tests.conftest import ASSETS

HAND_MADE = ASSETS / "yolov8n_ge_by_hand.yaml"


def test_yaml_with_gather_excite_builds_with_the_layer_in_place() -> None:
    model = build_model(HAND_MADE)
    layer = model.model[16]
    assert isinstance(layer, GatherExcite)
    assert (layer.channels, layer.variant, layer.extent) == (64, "theta-plus", 4)


@pytest.mark.parametrize("size", [(64, 64), (96, 160)])
def test_forward_gives_detections_at_square_and_rectangular_sizes(size: tuple[int, int]) -> None:
    model = build_model(HAND_MADE).eval()
    with torch.no_grad():
        predictions, _ = model(torch.zeros(1, 3, *size))
    anchors = sum((size[0] // s) * (size[1] // s) for s in (8, 16, 32))
    assert predictions.shape == (1, 4 + 3, anchors)


@pytest.fixture
def no_outbound_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make every non-loopback connect or name lookup fail, and record the attempts."""
    attempts: list[object] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def is_loopback(host: object) -> bool:
        return str(host) in {"localhost", "::1"} or str(host).startswith("127.")

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or is_loopback(host):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"test forbids connecting to {address}")

    def guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is None or is_loopback(host):
            return real_getaddrinfo(host, *args, **kwargs)
        attempts.append(host)
        raise socket.gaierror(f"test forbids looking up {host}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return attempts


def test_training_one_epoch_is_offline_and_reports_metrics(
    tiny_dataset: Path, tmp_path: Path, no_outbound_connections: list[object]
) -> None:
    seen_epochs: list[int] = []
    history = train_proxy(
        HAND_MADE,
        tiny_dataset,
        ProxySettings(epochs=1, imgsz=64, batch=8),
        tmp_path,
        on_epoch=lambda epoch, metrics: seen_epochs.append(epoch),
    )
    assert seen_epochs == [1]
    assert set(history[0]) == {"map50", "map50-95", "lr"}  # from scratch: no separate rate for new units
    assert 0.0 <= history[0]["map50-95"] <= history[0]["map50"] <= 1.0
    assert no_outbound_connections == []


def test_epoch_callback_can_stop_training(tiny_dataset: Path, tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop_after_first(epoch: int, metrics: dict[str, float]) -> None:
        raise Stop

    with pytest.raises(Stop):
        train_proxy(HAND_MADE, tiny_dataset, ProxySettings(epochs=3, imgsz=64, batch=8), tmp_path, stop_after_first)
