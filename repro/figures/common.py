"""What the figure modules share: rendering chosen z, pixel scaling, boxes, metric cells."""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from repro.train.sampling import batch_statistics
from repro.utils.seed import generator as make_generator

# Every render appends this many random z to the batch. The generators normalise with batch
# statistics (the authors' sampling), so a batch of 9 near-identical z (an arithmetic result
# plus its noisy copies) or of one walk's frames would be normalised with degenerate statistics
# and look unlike the model's samples; padding with random z keeps the statistics those of
# ordinary sample batches, and each rendered image then depends only on its own z.
REFERENCE_Z = 256
REFERENCE_SEED = 7_919


@torch.no_grad()
def render(variant, G: nn.Module, z: torch.Tensor, *, batch_size: int = 256,
           reference: int = REFERENCE_Z) -> torch.Tensor:
    """z (N, z_dim) -> float images (N, C, H, W) in the variant's pixel range."""
    device = z.device
    ref = variant.sample_z(reference, generator=make_generator(REFERENCE_SEED, device),
                           device=device) if reference else z[:0]
    out = []
    for start in range(0, len(z), batch_size):
        chunk = z[start:start + batch_size]
        with batch_statistics(G):
            x = G(torch.cat([chunk, ref]))  # (b + reference, C, H, W)
        out.append(x[:len(chunk)].float())
    return torch.cat(out) if out else z.new_zeros((0,))


@contextmanager
def frozen_statistics(G: nn.Module, z_ref: torch.Tensor) -> Iterator[None]:
    """Within the block G runs in eval mode on the BN statistics of the batch `z_ref`, taken
    before any hook the caller adds inside the block; every buffer, momentum and mode is
    restored afterwards.

    An edit of G's activations (Fig. 6 zeroes feature maps) rendered on batch statistics is
    re-normalised by the next BN layer: the batch's own statistics shrink with the edit and
    scale the remaining activations back up, undoing part of it. Frozen statistics of an
    unedited batch show the edit as the generator makes it.
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = {bn: bn.momentum for bn in bns}
    with batch_statistics(G):  # G in train mode here; its buffers and modes restored after
        try:
            with torch.no_grad():
                for bn in bns:
                    bn.reset_running_stats()
                    bn.momentum = None  # cumulative average: one pass gives the batch's statistics
                G(z_ref)
            G.eval()
            yield
        finally:
            for bn, m in momenta.items():
                bn.momentum = m


@torch.no_grad()
def render_frozen(G: nn.Module, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G(z) in batches, BN as G is set (inside `frozen_statistics`: each image its own)."""
    return torch.cat([G(z[s:s + batch_size]).float() for s in range(0, len(z), batch_size)])


def sample_z(variant, n: int, seed: int, device: torch.device) -> torch.Tensor:
    return variant.sample_z(n, generator=make_generator(seed, device), device=device)  # (n, z_dim)


def to01(x: torch.Tensor, pixel_range: str = "tanh") -> torch.Tensor:
    """Model-range float images -> [0, 1]: distances and classifiers all work in [0, 1]."""
    return ((x + 1) / 2).clamp(0, 1) if pixel_range == "tanh" else x.clamp(0, 1)


def u8_to01(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


def to_u8(x01: torch.Tensor) -> torch.Tensor:
    return (x01.clamp(0, 1) * 255).round().to(torch.uint8)


# ---------------------------------------------------------------- boxes

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1, y1 exclusive


def mask_boxes(mask: torch.Tensor, min_pixels: int = 1) -> list[Box]:
    """(H, W) bool -> bounding boxes of its 8-connected components with >= min_pixels pixels."""
    from scipy import ndimage

    labels, n = ndimage.label(mask.cpu().numpy(), structure=[[1, 1, 1]] * 3)
    boxes = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is not None and int((labels[sl] == k).sum()) >= min_pixels:
            boxes.append((sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    return boxes


def boxes_mask(boxes: Sequence[Box], size: int, grid: int | None = None) -> torch.Tensor:
    """Boxes in `size`-pixel coordinates -> (grid, grid) bool of cells whose centre is inside."""
    grid = grid or size
    c = (torch.arange(grid, dtype=torch.float32) + 0.5) * size / grid
    out = torch.zeros(grid, grid, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        out |= ((c.view(1, -1) >= x0) & (c.view(1, -1) < x1)
                & (c.view(-1, 1) >= y0) & (c.view(-1, 1) < y1))
    return out


def draw_boxes(images: torch.Tensor, boxes: Sequence[Sequence[Box]],
               colour: tuple[int, int, int] = (255, 0, 0)) -> torch.Tensor:
    """uint8 (N, 3, H, W) with 1-px box outlines painted on a copy."""
    out = images.clone()
    col = torch.tensor(colour, dtype=torch.uint8).view(3, 1)
    for i, bs in enumerate(boxes):
        for x0, y0, x1, y1 in bs:
            out[i, :, y0, x0:x1] = col
            out[i, :, y1 - 1, x0:x1] = col
            out[i, :, y0:y1, x0] = col
            out[i, :, y0:y1, x1 - 1] = col
    return out


def frame(images: torch.Tensor, which: torch.Tensor,
          colour: tuple[int, int, int] = (255, 0, 0), width: int = 2) -> torch.Tensor:
    """uint8 (N, 3, H, W): paint a border on images[which] (flags sharp jumps in walks)."""
    out = images.clone()
    col = torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1)
    sel = out[which]
    sel[..., :width, :] = col
    sel[..., -width:, :] = col
    sel[..., :, :width] = col
    sel[..., :, -width:] = col
    out[which] = sel
    return out


# ---------------------------------------------------------------- noise of a number

def mean_se(values: torch.Tensor) -> float:
    """Standard error of the mean of (N,) values (nan for N < 2)."""
    v = values.double().flatten()
    return (v.std() / len(v) ** 0.5).item() if len(v) > 1 else float("nan")


# ---------------------------------------------------------------- metric cells

def cell(runs: list[float], seeds: list[int], unit: str, protocol: dict[str, Any],
         deviations: list[str], comparable: bool = False) -> dict[str, Any]:
    """A cell of the shared metrics schema; figure numbers are harness-only (compares_to null)."""
    return {
        "value": statistics.fmean(runs) if runs else None,
        "std": statistics.stdev(runs) if len(runs) > 1 else None,
        "n_runs": len(runs),
        "runs": runs,
        "seeds": seeds,
        "unit": unit,
        "compares_to": None,
        "comparable": comparable,
        "protocol": protocol,
        "deviations": deviations,
    }
