"""Per-layer memory layout: each convolution of a variant timed forward + backward in NCHW and
in channels_last, on the training step's own shapes.

Why: the trainer's step is mostly convolution kernels (the train record's `limit`), and the
one lever on those kernels that keeps the step's maths is the memory layout oneDNN picks
them for. If choosing the layout per layer (instead of channels_last everywhere) bought
little, the kernels themselves are the limit; this record says how much it would buy.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from repro.bench.roofline import count_conv_flops, rate
from repro.registry import MODELS

CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _conv_inputs(variant_name: str, batch_size: int) -> list[tuple[str, nn.Module, torch.Size]]:
    """(name, conv module, input shape) of every conv of G and D, from one forward of each."""
    variant = MODELS.get(variant_name)
    spec = variant.spec
    G, D = variant.build_generator(), variant.build_discriminator()
    found: list[tuple[str, nn.Module, torch.Size]] = []
    hooks = [m.register_forward_hook(lambda m, a, _o, n=f"{who}.{n}": found.append((n, m, a[0].shape)))
             for who, net in (("G", G), ("D", D)) for n, m in net.named_modules() if isinstance(m, CONVS)]
    y = torch.randint(0, spec.n_classes, (batch_size,)) if spec.n_classes else None
    with torch.no_grad():
        D(G(variant.sample_z(batch_size), y), y)
    for h in hooks:
        h.remove()
    return found


def _time(m: nn.Module, x: torch.Tensor, reps: int) -> float:
    ts = []
    for i in range(reps + 2):  # two warm-up calls: oneDNN builds its primitives on the first
        t = time.perf_counter()
        m(x).sum().backward()
        if i >= 2:
            ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def layer_layouts(variant_name: str, batch_size: int, peak: dict | None, reps: int = 5) -> dict:
    """CPU only. Per conv: seconds per forward + backward (input and weight gradients, as in
    G's step) in each layout (weight and input in the same one), and the totals."""
    layers, totals = [], {"nchw": 0.0, "channels_last": 0.0, "best_per_layer": 0.0}
    for name, conv, shape in _conv_inputs(variant_name, batch_size):
        secs = {}
        for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            m = conv.to(memory_format=fmt)
            x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_()
            secs[layout] = _time(m, x, reps)
        # forward, input and weight gradients, as FlopCounterMode counts them on the call
        _, flops, _ = count_conv_flops(lambda: m(x).sum().backward())
        best = min(secs.values())
        for k in ("nchw", "channels_last"):
            totals[k] += secs[k]
        totals["best_per_layer"] += best
        layers.append({"layer": name, "input": list(shape),
                       "nchw_s": secs["nchw"], "channels_last_s": secs["channels_last"],
                       "faster": min(secs, key=secs.get),
                       "best": rate(flops, best, peak, "conv")})
    return {"batch_size": batch_size, "repeats": reps, "layers": layers, "total_s": totals,
            # what picking each layer's faster layout would save against channels_last throughout
            "best_per_layer_speedup_vs_channels_last": totals["channels_last"] / totals["best_per_layer"],
            "channels_last_speedup_vs_nchw": totals["nchw"] / totals["channels_last"]}
