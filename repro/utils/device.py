"""Device choice: `auto` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

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
