"""Device choice: `auto` means CUDA when present, else CPU."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from repro.errors import ReproError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ReproError("device 'cuda' requested but no CUDA GPU is visible; set device: auto or cpu")
    if name not in ("cpu", "cuda"):
        raise ReproError(f"unknown device {name!r}; valid names: auto, cpu, cuda")
    return torch.device(name)


def as_device(device: str | torch.device) -> torch.device:
    """'auto' | 'cpu' | 'cuda' (checked by resolve_device) | 'cuda:1' | torch.device -> torch.device."""
    if isinstance(device, torch.device):
        return device
    if device in ("auto", "cpu", "cuda"):
        return resolve_device(device)
    return torch.device(device)


def describe(device: torch.device) -> str:
    """The hardware behind a device, e.g. 'NVIDIA H100 80GB HBM3' or '2 threads'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} threads"


@contextmanager
def channels_last_weights(model: nn.Module, enabled: bool = True) -> Iterator[bool]:
    """Conv weights in channels_last while the block runs (yields whether they are), restored
    after. torch then runs each conv, and the BN and activation after it, in NHWC, which
    oneDNN computes faster on a CPU for the zoo's convs (python -m repro.bench measures it). Same
    math in another summation order: outputs differ from NCHW's by float32 rounding
    (~1e-6 relative), not bit for bit."""
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not enabled or not convs:
        yield False
        return
    saved = [(p, p.data) for m in convs for p in m.parameters(recurse=False)]
    try:
        for m in convs:
            m.to(memory_format=torch.channels_last)
        yield True
    finally:
        for p, data in saved:
            p.data = data
