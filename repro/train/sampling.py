"""Drawing samples from a generator the way the authors did.

The authors' code has no running BN averages: G always normalises with the statistics of the
batch it is generating. `generate` does the same by default (`bn="batch"`) without touching
G's stored buffers, so sampling never changes a model or breaks determinism.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from functools import partial
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from repro.data.base import to_uint8
from repro.models.base import Variant
from repro.utils.device import channels_last_weights
from repro.utils.seed import generator as make_generator

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Run BN layers on batch statistics; restore every buffer and mode afterwards."""
    modes = {m: m.training for m in model.modules()}
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])
        for m, mode in modes.items():
            m.training = mode


# A transposed conv with at most this many output channels (mnist_cond's last layer: 1) is
# computed as one matmul plus a col2im (`_transpose_by_fold`) on a CPU: oneDNN's kernel for
# it ran at ~4 GFLOP/s, the (B*H*W, C_in) x (C_in, C_out*k*k) product and fold at 3-4x that.
FOLD_MAX_OUT = 4


def _transpose_by_fold(m: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """m(x) for a zero-padded, ungrouped, undilated transposed conv: each input pixel's
    (C_out, kh, kw) patch is x_pixel . W, summed into the output where patches overlap."""
    b, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    oh = (h - 1) * sh - 2 * ph + kh + m.output_padding[0]
    ow = (w - 1) * sw - 2 * pw + kw + m.output_padding[1]
    cols = x.permute(0, 2, 3, 1).reshape(b * h * w, c) @ m.weight.reshape(c, -1)
    cols = cols.view(b, h * w, -1).transpose(1, 2)  # (B, C_out*kh*kw, H*W)
    out = F.fold(cols, (oh, ow), (kh, kw), padding=(ph, pw), stride=(sh, sw))
    return out if m.bias is None else out + m.bias[:, None, None]


def _foldable(m: nn.Module) -> bool:
    return (isinstance(m, nn.ConvTranspose2d) and m.out_channels <= FOLD_MAX_OUT
            and m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and all(o < s for o, s in zip(m.output_padding, m.stride)))


@contextmanager
def cpu_fast_layout(G: nn.Module, device: torch.device) -> Iterator[None]:
    """On a CPU: G's conv weights in channels_last (`channels_last_weights`: 1.3-1.4x for
    mnist_cond's first transposed conv) and narrow transposed convs by `_transpose_by_fold`;
    both undone afterwards. Same math, other summation order: the samples differ from the
    NCHW path by float32 rounding, not bit for bit (see `generate`)."""
    cpu = device.type == "cpu"
    folded = [m for m in G.modules() if cpu and _foldable(m)]
    with channels_last_weights(G, cpu):
        try:
            for m in folded:
                m.forward = partial(_transpose_by_fold, m)  # an instance attribute, removed below
            yield
        finally:
            for m in folded:
                del m.forward


@torch.no_grad()
def generate(variant: Variant, G: nn.Module, n: int, *, seed: int, device: torch.device,
             labels: torch.Tensor | None = None, batch_size: int = 500, bn: str = "batch",
             uint8: bool = True, fast: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples (uint8 (n, C, H, W) by default) and their labels (conditional variants).

    Labels default to uniform random classes. Batches are >= 100 so batch-statistics BN is
    stable, matching the authors' sampling.

    fast=True (opt-in, CPU only; python -m repro.bench measures the gain): `cpu_fast_layout`
    while sampling. Its samples match the default's to float32 rounding (fresh mnist_cond:
    at most 1e-6 absolute in [0, 1] at batch 500, 2e-5 at batch 5000, where the batch
    statistics sum more terms; as uint8, a few pixels in 1e5 one level apart), not bit for
    bit; the default (fast=False) gives the samples this function always gave.
    """
    spec = variant.spec
    g = make_generator(seed, device)
    if spec.n_classes and labels is None:
        labels = torch.randint(0, spec.n_classes, (n,), generator=g, device=device)
    layout = cpu_fast_layout(G, device) if fast else contextlib.nullcontext()
    with layout:
        out = _batches(variant, G, n, g, labels, device, batch_size, bn, uint8)
    return torch.cat(out), labels


def _batches(variant, G, n, g, labels, device, batch_size, bn, uint8) -> list[torch.Tensor]:
    spec = variant.spec
    out = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        z = variant.sample_z(stop - start, generator=g, device=device)  # (b, z_dim)
        y = None if labels is None else labels[start:stop].to(device)
        if bn == "batch":
            with batch_statistics(G):
                x = G(z, y)
        else:
            G.eval()
            x = G(z, y)
        # contiguous: callers flatten and index samples as NCHW rows
        x = x.float().contiguous()
        out.append(to_uint8(x, spec.pixel_range) if uint8 else x)
    return out


def image_grid(images: torch.Tensor, nrow: int | None = None) -> "np.ndarray":  # noqa: F821
    """uint8 (N, C, H, W) -> uint8 (H', W', 3) grid, for PNGs and DVCLive."""
    import math

    from torchvision.utils import make_grid

    nrow = nrow or int(math.ceil(math.sqrt(len(images))))
    grid = make_grid(images.cpu(), nrow=nrow, padding=1, pad_value=255)  # (C, H', W')
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    return grid.permute(1, 2, 0).contiguous().numpy()


def save_grid(images: torch.Tensor, path, nrow: int | None = None, title: str | None = None) -> None:
    """Save a sample grid as PNG atomically (with an optional caption naming the data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from repro.utils.io import save_figure

    import textwrap

    grid = image_grid(images, nrow)
    h, w = grid.shape[:2]
    width = max(4.0, w / 60)
    lines = textwrap.wrap(title, width=int(width * 14)) if title else []
    caption = 0.16 * len(lines)  # inches of caption
    image_h = width * h / w
    fig = plt.figure(figsize=(width, image_h + caption))
    ax = fig.add_axes((0, 0, 1, image_h / (image_h + caption)))
    ax.imshow(grid, interpolation="nearest")
    ax.axis("off")
    if lines:
        fig.text(0.5, 1 - 0.02 * caption / (image_h + caption), "\n".join(lines),
                 ha="center", va="top", fontsize=7)
    save_figure(fig, path, dpi=100)
    plt.close(fig)
