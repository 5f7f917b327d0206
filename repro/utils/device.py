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


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
