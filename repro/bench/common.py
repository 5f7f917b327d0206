"""Shared pieces of the benchmarks: timing, generated inputs, result records."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

# Targets from issue #7: ratio = ours / alternative (speed-up), by device type. None: no target.
TARGETS: dict[str, dict[str, float | None]] = {
    "train": {"cpu": 1.3, "cuda": 3.0},
    "svm": {"cpu": 3.0, "cuda": 10.0},
    "nn": {"cpu": None, "cuda": None},
    "features": {"cpu": None, "cuda": None},
}
# Projected seconds for 10M generated samples against 10k test images (GPU target only).
NN_10M_TARGET_S = {"cpu": None, "cuda": 60.0}


def train_fast_path(device: torch.device) -> dict[str, bool]:
    """The TrainConfig switches our trainer is benchmarked with (off in the profiles' shipped
    trainings; the tutorial loop has none): channels_last on a CPU (oneDNN's NHWC convolutions:
    1.2x NCHW for lsun64_small on 2 cores), plus bf16 autocast on CUDA. channels_last is the
    same math summed in another order: losses agree with NCHW to float32 rounding
    (tests/test_bench.py). bf16 changes the arithmetic itself (and is untested here: no GPU)."""
    return {"channels_last": True, "bf16": True} if device.type == "cuda" else {"channels_last": True}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """(seconds, result) of fn(), with the device drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def target(kind: str, device: torch.device) -> float | None:
    return TARGETS[kind].get(device.type)


def comparison(ours: dict, alternative: dict, kind: str, device: torch.device,
               higher_is_better: bool, **extra: Any) -> dict:
    """A benchmark record: ratio = speed-up of ours over the alternative."""
    a, b = ours["value"], alternative["value"]
    ratio = (a / b if higher_is_better else b / a) if a and b else None
    t = target(kind, device)
    return {"ours": ours, "alternative": alternative, "ratio": ratio, "target": t,
            "target_met": None if t is None or ratio is None else bool(ratio >= t), **extra}


def class_images(n: int, channels: int, size: int, n_classes: int, seed: int,
                 noise: float = 0.35, contrast: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, C, H, W) images and (n,) labels: one smooth random prototype per class plus
    per-pixel noise (std `noise` of the range), so classes overlap without being trivial.
    Cheap to make at any n (the synthetic datasets cost milliseconds per image). `contrast` < 1
    pulls the prototypes towards grey, so that a probe's accuracy stays below 100 %."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n_classes, channels, 4, 4, generator=g)
    protos = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear",
                                             align_corners=False)  # (K, C, H, W) in [0, 1]
    if contrast != 1.0:
        protos = 0.5 + contrast * (protos - 0.5)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    out = torch.empty((n, channels, size, size), dtype=torch.uint8)
    for s in range(0, n, 4096):
        y = labels[s:s + 4096]
        x = protos[y] + noise * torch.randn((len(y), channels, size, size), generator=g)
        out[s:s + 4096] = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return out, labels
