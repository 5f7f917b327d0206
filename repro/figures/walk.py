"""Fig. 4 (and Fig. 8's turn): walks through z and how smooth they are.

A walk visits a series of anchor points in z by linear interpolation. Its smoothness number is,
per row, the largest distance between consecutive frames divided by the row's median step:
1 for perfectly even change, large when one step changes the image far more than the others
(a "sharp jump", the memorisation symptom the paper looks for). It is measured in pixel space
and in D's feature space (D.feature_vector), since a jump may be small in pixels but large in
content. The median, not the mean, is the reference so that a jump does not raise its own bar.

The figures' cells are the mean of that number over the walks, not its maximum: a maximum over
hundreds of steps is an extreme value, whose spread over which z were drawn does not shrink with
more walks (the smoke gate measured 2.3-2.9 over six seeds at 24 and at 96 walks). The jumps
themselves are counted, and the figure's verdict rests on the number of walks with a jump
(`jump_walks`) out of the walks drawn.
"""

from __future__ import annotations

import torch

from repro.errors import ReproError


def walk_z(anchors: torch.Tensor, steps: int) -> torch.Tensor:
    """(R, A, Z) anchors -> (R, (A - 1) * steps + 1, Z): `steps` frames per segment, anchors included."""
    if anchors.dim() != 3 or anchors.shape[1] < 2 or steps < 1:
        raise ReproError("a walk needs (rows, >= 2 anchors, z_dim) anchors and >= 1 step per segment")
    t = torch.arange(steps, dtype=anchors.dtype, device=anchors.device) / steps  # (steps,)
    a, b = anchors[:, :-1, None, :], anchors[:, 1:, None, :]  # (R, A-1, 1, Z)
    frames = (a + (b - a) * t.view(1, 1, -1, 1)).flatten(1, 2)  # (R, (A-1)*steps, Z)
    return torch.cat([frames, anchors[:, -1:]], dim=1)


def line_z(start: torch.Tensor, direction: torch.Tensor, frames: int) -> torch.Tensor:
    """(R, Z) starts + t * (Z,) direction for t in [0, 1] -> (R, frames, Z)."""
    t = torch.linspace(0, 1, frames, dtype=start.dtype, device=start.device)
    return start[:, None, :] + t.view(1, -1, 1) * direction.view(1, 1, -1)


def step_sizes(frames: torch.Tensor) -> torch.Tensor:
    """(R, T, ...) frames (images or feature vectors) -> (R, T - 1) L2 distances between neighbours."""
    flat = frames.flatten(2).double()
    return (flat[:, 1:] - flat[:, :-1]).norm(dim=2).float()


def smoothness(steps: torch.Tensor, jump_ratio: float) -> dict:
    """(R, T - 1) step sizes -> {"max_ratio", "mean_row_ratio", "row_ratio" (R,), "mean_step",
    "jumps": [(row, k)]}.

    Step k (frame k -> k + 1) is a jump when it exceeds `jump_ratio` times its row's median.
    """
    median = steps.median(dim=1).values.clamp_min(1e-12)  # (R,)
    ratio = steps / median[:, None]
    row_ratio = ratio.max(dim=1).values
    jumps = [(int(r), int(k)) for r, k in torch.nonzero(ratio > jump_ratio).tolist()]
    return {"max_ratio": row_ratio.max().item(), "mean_row_ratio": row_ratio.mean().item(),
            "row_ratio": row_ratio,
            "mean_step": steps.mean().item(), "jumps": jumps}


def jump_walks(jumps: set[tuple[int, int]]) -> int:
    """Jumps [(row, k)] -> the number of walks (rows) with at least one jump."""
    return len({r for r, _ in jumps})
