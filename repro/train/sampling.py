"""Drawing samples from a generator the way the authors did.

The authors' code has no running BN averages: G always normalises with the statistics of the
batch it is generating. `generate` does the same by default (`bn="batch"`) without touching
G's stored buffers, so sampling never changes a model or breaks determinism.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from repro.data.base import to_uint8
from repro.models.base import Variant
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


@torch.no_grad()
def generate(variant: Variant, G: nn.Module, n: int, *, seed: int, device: torch.device,
             labels: torch.Tensor | None = None, batch_size: int = 500, bn: str = "batch",
             uint8: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples (uint8 (n, C, H, W) by default) and their labels (conditional variants).

    Labels default to uniform random classes. Batches are >= 100 so batch-statistics BN is
    stable, matching the authors' sampling.
    """
    spec = variant.spec
    g = make_generator(seed, device)
    if spec.n_classes and labels is None:
        labels = torch.randint(0, spec.n_classes, (n,), generator=g, device=device)
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
        out.append(to_uint8(x.float(), spec.pixel_range) if uint8 else x.float())
    return torch.cat(out), labels


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
