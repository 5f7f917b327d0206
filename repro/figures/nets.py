"""Small judges trained on real labelled images, used to read generated images.

- `Segmenter`: per-pixel logits of object masks (here: windows). Trained on the exact masks of
  synth_rooms (or, in the `paper` profile, on the hand-drawn window boxes). It gives window
  boxes on generated samples (Fig. 6's logistic regression) and whether a sample shows a
  window (Fig. 6's number).
- `AttributeNet`: image-level binary attributes (CelebA's labels, or attributes derived from
  synth_rooms' masks by `room_attributes`). It picks exemplars and checks results (Figs. 7/8).

Both are deliberately small (minutes of CPU in the demo profile); their held-out accuracy is
reported beside the numbers they produce, so a weak judge is visible. `figures.judges` of each
are trained under different seeds and read as one (`MeanLogit`): a single small net's verdicts
on generated images move with its seed much more than its accuracy on real images suggests.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from repro.errors import ReproError
from repro.utils.progress import progress

# A room "has a window" when at least this many pixels of window are visible (the smallest
# window synth_rooms draws is 10x10, and a bed may hide part of it).
MIN_WINDOW_PIXELS = 30
ROOM_ATTRIBUTES = ("window", "bed_left")
# A higher rate than the classifier's: the small segmenter converges in ~2x fewer steps.
SEGMENTER_LR = 5e-3


def room_attributes(masks: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[str]]:
    """synth_rooms masks -> ((N, 2) int64, names): a visible window; the bed's centre in the left half."""
    if "window" not in masks or "bed" not in masks:
        raise ReproError("room attributes need the 'window' and 'bed' masks of synth_rooms")
    window = masks["window"].flatten(1).sum(1) >= MIN_WINDOW_PIXELS
    bed = masks["bed"].float()
    xs = torch.arange(bed.shape[-1], dtype=torch.float32) + 0.5
    cx = (bed.sum(1) * xs).sum(1) / bed.flatten(1).sum(1).clamp_min(1)
    return torch.stack([window, cx < bed.shape[-1] / 2], 1).long(), list(ROOM_ATTRIBUTES)


class Segmenter(nn.Module):
    """(B, 3, 64, 64) in [0, 1] -> (B, K, 64, 64) logits, computed on a 16x16 grid and upsampled:
    objects are >= 10 px, and plain strided convs are several times faster on CPU than the
    dilated full-resolution alternative."""

    def __init__(self, k: int = 1, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1), nn.ReLU(),  # (B, w/2, 32, 32)
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.ReLU(),  # (B, w, 16, 16)
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, k, 1))  # (B, K, 16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class AttributeNet(nn.Module):
    """(B, 3, 64, 64) in [0, 1] -> (B, K) logits; strided convs keep where things are (bed_left)."""

    def __init__(self, k: int, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, w, 32, 32)
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * width, 4 * width, 4, 2, 1), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * width * 16, k)  # from (B, 4w, 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


def fit(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int,
        seed: int, device: torch.device, desc: str, lr: float = 2e-3,
        balance: bool = False, decay: bool = False) -> nn.Module:
    """Binary cross-entropy training on (N, 3, H, W) float [0, 1] inputs and {0, 1} targets.

    Random horizontal flips would break `bed_left`, so there is no augmentation. `decay`:
    the rate falls to zero over the steps (cosine), so the net ends settled, not wherever its
    last batches left it (repro.figures.coherence). `balance`
    weighs positives by sqrt(negatives / positives) per output: window pixels are a few % of
    all pixels, and unweighted training first settles on "never a window".
    """
    if len(x) < 2:
        raise ReproError(f"{desc}: needs at least 2 labelled images, got {len(x)}")
    torch.manual_seed(seed)
    # Re-initialise under the seed: the weights drawn when `net` was built depend on whatever
    # used the global RNG before (that made the smoke drift gate's Fig. 6 cells flip).
    for module in net.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    net = net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if decay else None
    g = torch.Generator().manual_seed(seed)
    pos_weight = None
    if balance:
        dims = [d for d in range(y.dim()) if d != 1]
        pos = y.float().sum(dims).clamp_min(1)
        neg = (1 - y.float()).sum(dims).clamp_min(1)
        pos_weight = (neg / pos).sqrt().view(-1, *[1] * (y.dim() - 2)).to(device)
    for _ in progress(range(steps), desc=desc, unit="step"):
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=g)
        xb, yb = x[idx].to(device), y[idx].to(device).float()
        loss = F.binary_cross_entropy_with_logits(net(xb), yb, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return net.eval()


class MeanLogit(nn.Module):
    """Several judges trained under different seeds, read as one: the mean of their logits."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def fit_judges(make: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, steps: int,
               batch_size: int, seeds: list[int], device: torch.device, desc: str,
               **kw) -> nn.Module:
    """`fit` once per seed; one seed gives that net itself, several a `MeanLogit` of them."""
    members = [fit(make(), x, y, steps, batch_size, s, device,
                   desc if len(seeds) == 1 else f"{desc} {i + 1}/{len(seeds)}", **kw)
               for i, s in enumerate(seeds)]
    return members[0] if len(members) == 1 else MeanLogit(members).eval()


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Sigmoid probabilities for float [0, 1] inputs, on the CPU."""
    net.eval()
    return torch.cat([torch.sigmoid(net(x[s:s + batch_size].to(device))).cpu()
                      for s in range(0, len(x), batch_size)])


def has_window(window_prob: torch.Tensor, min_pixels: int = MIN_WINDOW_PIXELS) -> torch.Tensor:
    """(N, H, W) window probabilities -> (N,) bool: the detector's "this sample shows a window"."""
    return (window_prob > 0.5).flatten(1).sum(1) >= min_pixels
