"""Devices as Ultralytics names them ('cpu', '0', '0,1', 'cuda:1', 'mps'), checked against this machine."""

from __future__ import annotations

import torch

from ge_nas.errors import InputError

__all__ = ["check_device", "cuda_device_count", "devices_of", "torch_device"]


def cuda_device_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(device: str | None) -> str:
    """``--device``: 'cpu', or GPU indices that exist here; the default is GPU 0 when there is one."""
    count = cuda_device_count()
    if device is None:
        return "0" if count else "cpu"
    if device.lower() == "cpu":
        return "cpu"
    if device.lower() == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("--device mps: this machine has no Apple GPU (MPS); use cpu" + (" or 0" if count else ""))
        return "mps"
    indices = [d.strip().removeprefix("cuda:") for d in device.split(",")]
    if not all(i.isdigit() for i in indices):
        raise InputError(f"--device {device!r}: use cpu, or GPU indices such as 0 or 0,1")
    missing = [i for i in indices if int(i) >= count]
    if missing:
        raise InputError(
            f"--device {device!r}: GPU {', '.join(missing)} not found (this machine has {count} GPU(s)); use cpu"
            + (f" or 0..{count - 1}" if count else "")
        )
    return ",".join(indices)


def devices_of(device: str) -> list[str]:
    """The single devices of a checked ``--device`` value: ``"0,1"`` -> ``["0", "1"]``."""
    return device.split(",")


def torch_device(device: str) -> torch.device:
    """Ultralytics' device strings as a torch device (the first one of a list)."""
    first = device.split(",")[0].strip().lower()
    if first.isdigit():
        return torch.device(f"cuda:{first}")
    return torch.device(first or "cpu")
