"""The data layer's common types.

Every dataset, real or generated, loads into an `ImageSet`: uint8 images held in memory as one
tensor (the 28x28-64x64 sets here fit, and holding them on the training device avoids
DataLoader round trips). Each set says where it came from (`source`, `real`), so every
artefact downstream can be labelled with its data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from repro.data.fit import fit_to
from repro.errors import ReproError


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts of a dataset: what the paper's protocol expects of it."""

    name: str
    image_size: int  # native H == W
    channels: int  # 1 (grey) or 3 (RGB)
    n_classes: int  # 0 when unlabeled
    splits: dict[str, int]  # split name -> number of images in the full dataset
    real: bool  # False for generated datasets
    description: str = ""


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor | None  # (N,) int64, or None when unlabeled
    name: str
    split: str
    source: str  # e.g. "real MNIST train[:50000] (torchvision files, md5-verified)"
    real: bool
    masks: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (N, H, W) bool
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ReproError(f"{self.name}: images must be a uint8 (N, C, H, W) tensor")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ReproError(f"{self.name}: {len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor | slice) -> "ImageSet":
        return replace(
            self,
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            masks={k: m[index] for k, m in self.masks.items()},
        )

    def resized(self, image_size: int, channels: int) -> "ImageSet":
        """Same images at another size / channel count (grey <-> RGB), labelled as such.

        Stages use `repro.data.fit.fit_to`, which also returns the deviations applied."""
        return fit_to(self, image_size, channels, "resize")[0]


def to_float(images: torch.Tensor, pixel_range: str = "tanh") -> torch.Tensor:
    """uint8 (N, C, H, W) -> float in [-1, 1] ("tanh", the paper's scaling) or [0, 1] ("sigmoid")."""
    x = images.float()
    if pixel_range == "tanh":
        return x / 127.5 - 1.0
    if pixel_range == "sigmoid":
        return x / 255.0
    raise ReproError(f"unknown pixel_range {pixel_range!r}; valid names: sigmoid, tanh")


def to_uint8(x: torch.Tensor, pixel_range: str = "tanh") -> torch.Tensor:
    """Inverse of `to_float`, for saving generated samples as images."""
    if pixel_range == "tanh":
        x = (x + 1.0) * 127.5
    else:
        x = x * 255.0
    return x.round().clamp(0, 255).to(torch.uint8)


class Dataset(Protocol):
    """What the registry holds for each dataset name."""

    spec: DatasetSpec

    def load(self, split: str, *, root: str, download: bool, search: list[str],
             max_images: int | None, seed: int) -> ImageSet: ...
