"""Fitting a dataset to a model's input: the one place images are resized, padded or converted.

Any such fit is a deviation from the protocol of every cell it touches, so `fit_to` returns the
fitted set together with the deviations it applied (none when nothing changed), and how the
spatial size is fitted is a config choice (`fit:` in the stage's section):
- `resize` (the default, the harness's choice so far): bilinear with antialiasing.
- `pad`: zero (black) padding, centred, the extra pixel of an odd difference at the bottom /
  right; how the authors fed 28x28 MNIST to a 32x32 model. Padding only enlarges.
Channels: grey -> RGB replicates the channel; RGB -> grey takes the luma
(0.299 R + 0.587 G + 0.114 B).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

from repro.errors import ReproError

if TYPE_CHECKING:
    from repro.data.base import ImageSet

Fit = Literal["resize", "pad"]
FIT_CHOICES = ("resize", "pad")


def pad_geometry(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that centres an H x W image in size x size."""
    dh, dw = size - height, size - width
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    raise ReproError(f"cannot convert {x.shape[1]} channels to {channels}")


def fit_to(data: "ImageSet", image_size: int, channels: int, how: Fit = "resize", *,
           key: str = "fit") -> tuple["ImageSet", list[str]]:
    """`data` fitted to (channels, image_size, image_size), and the deviations that took.

    `key` names the config field that chose `how` (e.g. "table2.fit"): it is quoted in the
    deviations and in the error an impossible fit raises.
    """
    if how not in FIT_CHOICES:
        raise ReproError(f"unknown fit {how!r} ({key}); valid names: {', '.join(FIT_CHOICES)}")
    c0, h, w = data.images.shape[1:]
    devs: list[str] = []
    x = _channels(data.images, channels)
    if c0 != channels:
        devs.append(f"{data.name}: 1 channel replicated to 3 (grey shown as RGB)" if channels == 3
                    else f"{data.name}: {c0} channels converted to 1 (luma 0.299R + 0.587G + 0.114B)")
    masks = data.masks
    spatial = (h, w) != (image_size, image_size)
    if spatial and how == "resize":
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear",
                          antialias=True, align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8)
        masks = {k: F.interpolate(m[:, None].float(), size=(image_size, image_size),
                                  mode="nearest")[:, 0].bool() for k, m in masks.items()}
        devs.append(f"{data.name} images resized {h}x{w} -> {image_size}x{image_size} "
                    f"(bilinear, antialiased; {key}: resize)")
    elif spatial:
        if h > image_size or w > image_size:
            raise ReproError(f"cannot fit {data.name}'s {h}x{w} images to {image_size}x{image_size} "
                             f"by padding (padding only enlarges); set {key}: resize, or use a "
                             f"model whose input is at least {h}x{w}")
        geometry = pad_geometry(h, w, image_size)
        x = F.pad(x, geometry, value=0)
        masks = {k: F.pad(m, geometry, value=False) for k, m in masks.items()}
        left, right, top, bottom = geometry
        where = (f"{left} px each side" if len({left, right, top, bottom}) == 1 else
                 f"left/right {left}/{right} px, top/bottom {top}/{bottom} px")
        devs.append(f"{data.name} images zero-padded {h}x{w} -> {image_size}x{image_size} "
                    f"(centred, {where} of black; {key}: pad)")
    if not devs:
        return data, []
    verb = "zero-padded" if spatial and how == "pad" else "resized"
    source = f"{data.source}, {verb} to {channels}x{image_size}x{image_size}"
    return replace(data, images=x.contiguous(), masks=masks, source=source), devs
