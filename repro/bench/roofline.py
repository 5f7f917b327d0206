"""The machine's limits, measured at the start of each benchmark run, and each hot path's
achieved rate as a fraction of them (a roofline next to the ratio against the alternative).

Peaks (best of a few repeats, so a busy moment on a shared machine lowers them less):
- fp32 matmul: an n x n by n x n product (2 n^3 FLOPs);
- fp32 convolution: 5x5 128->128 and 3x3 256->256 on 16x16 maps (the zoo's kernel sizes and
  widths at a size where the kernels run at their best), forward, direct FLOPs
  (2 * out pixels * C_in * C_out * k^2);
- memory bandwidth: a large fp32 copy (bytes read + bytes written per second).
A path's FLOPs are counted by torch.utils.flop_counter.FlopCounterMode on the path itself
(matmuls and convolutions, forward and backward; elementwise work is not counted), so
"fraction of peak" is the useful-FLOP rate over the best rate the same kernels reach alone.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from repro.bench.common import sync

PEAK_SIZES = {  # (matmul n, conv batch, copy elements, repeats)
    "quick": (1536, 32, 1 << 24, 4),
    "cpu": (2048, 64, 1 << 25, 6),
    "cuda": (8192, 256, 1 << 28, 10),
}


def _best_seconds(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN / cuBLAS kernel selection
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def conv_flops(batch: int, c_in: int, c_out: int, k: int, out_hw: int) -> int:
    return 2 * batch * out_hw * out_hw * c_in * c_out * k * k


def measure_peak(device: torch.device, size: str = "quick") -> dict:
    """{"matmul_fp32_gflops", "conv_fp32_gflops", "conv5x5_fp32_gflops", "conv3x3_fp32_gflops",
    "memory_gbps", "method"} of this device now."""
    n, b, m, reps = PEAK_SIZES[size]
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=g)
    bm = torch.randn(n, n, device=device, generator=g)
    mm = 2 * n ** 3 / _best_seconds(lambda: a @ bm, device, reps) / 1e9
    x5 = torch.randn(b, 128, 16, 16, device=device, generator=g)
    w5 = torch.randn(128, 128, 5, 5, device=device, generator=g)
    c5 = conv_flops(b, 128, 128, 5, 16) / _best_seconds(
        lambda: F.conv2d(x5, w5, padding=2), device, reps) / 1e9
    x3 = torch.randn(b, 256, 16, 16, device=device, generator=g)
    w3 = torch.randn(256, 256, 3, 3, device=device, generator=g)
    c3 = conv_flops(b, 256, 256, 3, 16) / _best_seconds(
        lambda: F.conv2d(x3, w3, padding=1), device, reps) / 1e9
    src = torch.empty(m, device=device).uniform_(generator=g)
    dst = torch.empty_like(src)
    bw = 2 * 4 * m / _best_seconds(lambda: dst.copy_(src), device, reps) / 1e9
    del a, bm, x5, w5, x3, w3, src, dst
    return {"matmul_fp32_gflops": mm, "conv_fp32_gflops": max(c5, c3),
            "conv5x5_fp32_gflops": c5, "conv3x3_fp32_gflops": c3, "memory_gbps": bw,
            "method": f"best of {reps} after one warm-up: {n}^3 matmul; conv 5x5 128->128 "
                      f"and 3x3 256->256 on 16x16 at batch {b}; copy of {m} float32",
            "threads": torch.get_num_threads()}


def count_flops(fn: Callable[[], Any]) -> tuple[int, Any]:
    """(FLOPs of fn() as FlopCounterMode counts them, fn's result)."""
    total, _, out = count_conv_flops(fn)
    return total, out


def count_conv_flops(fn: Callable[[], Any]) -> tuple[int, int, Any]:
    """(FLOPs of fn(), those of its convolutions (transposed ones too), fn's result)."""
    with FlopCounterMode(display=False) as fc:
        out = fn()
    conv = sum(n for op, n in fc.get_flop_counts()["Global"].items() if "convolution" in str(op))
    return int(fc.get_total_flops()), int(conv), out


def rate(flops: float, seconds: float, peak: dict | None, kind: str = "conv") -> dict:
    """Achieved GFLOP/s and its fraction of the measured `kind` peak (conv or matmul)."""
    gflops = flops / seconds / 1e9 if seconds > 0 else None
    key = f"{kind}_fp32_gflops"
    p = (peak or {}).get(key)
    return {"gflop": flops / 1e9, "gflops": gflops, "peak": key, "peak_gflops": p,
            "fraction_of_peak": gflops / p if gflops is not None and p else None}


def roofline(ours_flops: float, ours_s: float, alt_flops: float | None, alt_s: float | None,
             peak: dict | None, kind: str) -> dict:
    """The record a benchmark stores under "roofline": ours and the alternative side by side."""
    out = {"kind": kind, "ours": rate(ours_flops, ours_s, peak, kind)}
    if alt_flops is not None and alt_s:
        out["alternative"] = rate(alt_flops, alt_s, peak, kind)
    return out
