"""Fig. 5: guided backpropagation of D's last conv layer features, trained vs random D.

For each of the first `features` channels of D's last conv layer, the images of a batch with
the largest spatial maximum of that channel are taken (its "maximal axis-aligned responses"),
and the gradient of that maximum with respect to the input is computed with guided
backpropagation (Springenberg et al. 2014): through every (Leaky)ReLU only positive gradient
flows, and only where the unit's input was positive. The number: the share of the saliency mass
(|gradient| summed over colour channels) that falls on the object masks (bed, window) of the
images. A D that learnt object parts puts more mass there than a randomly initialised one.

BN: D is copied and its BN layers are given the running statistics of the very batch analysed
(cumulative average over one pass), then evaluated in eval mode. Eval mode keeps each image's
gradient its own (batch statistics would couple the images); recomputing the statistics treats
the trained and the random D alike (the random D's stored statistics are the N(0, 1) defaults).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from repro.figures.common import mean_se


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, x * slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype), None


@contextmanager
def guided(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every ReLU / LeakyReLU of `model` backpropagates the guided way."""
    handles = []
    for m in model.modules():
        if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            slope = getattr(m, "negative_slope", 0.0)
            # A forward hook's return value replaces the output, so the graph runs through
            # _GuidedReLU only; the forward values are unchanged.
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, s=slope: _GuidedReLU.apply(inp[0], s)))
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def calibrated(D: nn.Module, images: torch.Tensor) -> nn.Module:
    """A copy of D in eval mode whose BN statistics are those of `images` (see module doc)."""
    D = copy.deepcopy(D)
    bns = [m for m in D.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        if bn.track_running_stats:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: one pass gives the batch's statistics
    D.train()
    D.layer_outputs(images)
    return D.eval()


def top_responses(D: nn.Module, images: torch.Tensor, features: int, top: int,
                  batch_size: int = 256) -> torch.Tensor:
    """-> (features, top) indices of the images with the largest spatial max per feature."""
    with torch.no_grad():
        resp = torch.cat([D.layer_outputs(images[s:s + batch_size])[-1][:, :features].amax((2, 3))
                          for s in range(0, len(images), batch_size)])  # (N, features)
    return resp.topk(min(top, len(images)), dim=0).indices.t()  # (features, top)


def saliency(D: nn.Module, images: torch.Tensor, feature: int) -> torch.Tensor:
    """Guided gradients (N, C, H, W) of each image's spatial max of `feature` in D's last layer.

    D must be in eval mode, so the sum over images separates into per-image gradients.
    """
    x = images.clone().requires_grad_(True)
    with guided(D):
        act = D.layer_outputs(x)[-1][:, feature]  # (N, h, w)
        act.amax(dim=(1, 2)).sum().backward()
    return x.grad.detach()


def object_mass(grads: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) gradients, (N, H, W) bool object masks -> (N,) share of |grad| on objects."""
    s = grads.abs().sum(1)  # (N, H, W)
    return (s * masks).flatten(1).sum(1) / s.flatten(1).sum(1).clamp_min(1e-12)


def analyse(D: nn.Module, images: torch.Tensor, masks: torch.Tensor, features: int,
            top: int) -> dict:
    """-> {"mass": mean share on objects, "masses": (F, top) each image's share, "index":
    (F, top), "grads": (F, top, C, H, W)}.

    images: float in D's pixel range; masks: (N, H, W) bool union of the objects.
    """
    D = calibrated(D, images)
    index = top_responses(D, images, features, top)
    grads = torch.stack([saliency(D, images[index[f]], f) for f in range(len(index))])
    mass = torch.stack([object_mass(grads[f], masks[index[f]]) for f in range(len(index))])
    return {"mass": mass.mean().item(), "masses": mass.cpu(), "index": index, "grads": grads}


def visualise(grads: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) gradients -> uint8 images: each normalised to grey +- 3 std, as usual."""
    flat = grads.flatten(-3)
    g = (grads - flat.mean(-1)[..., None, None, None]) / (3 * flat.std(-1)[..., None, None, None] + 1e-12)
    return ((g * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def ratio_se(trained: dict, randoms: list[dict]) -> float:
    """Standard error of mass(trained) / mean mass(randoms): the trained D's spread over the
    images it analyses, the random Ds' over their images and inits (delta method)."""
    t = trained["mass"]
    r = sum(x["mass"] for x in randoms) / len(randoms)
    se_t = mean_se(trained["masses"])
    within = sum(mean_se(x["masses"]) ** 2 for x in randoms) / len(randoms) ** 2
    between = (torch.tensor([x["mass"] for x in randoms]).var().item() / len(randoms)
               if len(randoms) > 1 else 0.0)
    se_r = (within + between) ** 0.5
    return (t / max(r, 1e-12)) * ((se_t / max(t, 1e-12)) ** 2 + (se_r / max(r, 1e-12)) ** 2) ** 0.5
