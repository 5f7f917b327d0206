"""Figs. 2/3: are the samples copies of training images?

Each sample's Euclidean distance (pixels in [0, 1]) to its nearest training image is compared
with the same distance for held-out real images, which the model never saw. A generator that
copies training images has samples much closer to the training set than held-out images are
(ratio << 1); one that generalises has a ratio near 1 or above (its samples are also less
perfect than real images). The ratio of medians is used because a few near-duplicates should
not hide behind a mean and a few broken samples should not inflate it. Its noise (`ratio_se`)
is the bootstrap spread over which samples and held-out images were drawn.
"""

from __future__ import annotations

import torch

from repro.errors import ReproError
from repro.eval.nearest import StreamingNN


def nearest(queries: torch.Tensor, refs: torch.Tensor, device: torch.device | str = "cpu",
            ref_block: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, D), (R, D) float -> (Q,) L2 distance to and (Q,) index of the nearest reference."""
    if len(refs) == 0:
        raise ReproError("no training images to compare samples with; raise figures.max_train")
    nn = StreamingNN(queries.flatten(1), device=device, ref_block=ref_block)
    nn.update(refs.flatten(1), torch.zeros(len(refs), dtype=torch.int64))
    return nn.best_dist2.sqrt().float().cpu(), nn.best_index.cpu()


def memorisation(samples: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor,
                 device: torch.device | str = "cpu", boot: int = 200) -> dict:
    """Float images in [0, 1] (N, C, H, W) -> {"ratio", "ratio_se", "sample_median",
    "heldout_median", "sample_dist", "sample_index"}: ratio = median NN distance of samples / of
    held-out images; ratio_se its bootstrap standard error over `boot` resamples of both."""
    d_s, idx = nearest(samples, train, device)
    d_h, _ = nearest(heldout, train, device)
    heldout_median = d_h.median().item()
    if heldout_median <= 0:
        raise ReproError("held-out images coincide with training images (distance 0); "
                         "use disjoint splits for figures.split and figures.heldout_split")
    g = torch.Generator().manual_seed(0)
    rs = (d_s[torch.randint(0, len(d_s), (boot, len(d_s)), generator=g)].median(1).values
          / d_h[torch.randint(0, len(d_h), (boot, len(d_h)), generator=g)].median(1).values.clamp_min(1e-12))
    return {"ratio": d_s.median().item() / heldout_median, "ratio_se": rs.std().item(),
            "sample_median": d_s.median().item(),
            "heldout_median": heldout_median, "sample_dist": d_s, "sample_index": idx}
