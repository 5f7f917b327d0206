"""What every model variant provides (the registry's contract for `model` entries).

A variant registers itself where it is defined: `NAME = register(FactoryVariant(spec, ...))`
puts it in `repro.registry.MODELS` under `spec.name`, so a new variant is its module (plus the
profile sections that train it), with no list to edit.

A variant is a pair (generator, discriminator) plus static facts (`VariantSpec`). Generators
map z (and a label for conditional variants) to images in the variant's pixel range;
discriminators return one logit per image and expose per-layer activations, from which
`feature_vector` builds the fixed-size representation the paper feeds to the L2-SVM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
from torch import nn

from repro.registry import MODELS


@dataclass(frozen=True)
class VariantSpec:
    name: str
    image_size: int
    channels: int
    z_dim: int
    z_dist: Literal["uniform", "normal"]  # uniform on [-1, 1] or standard normal
    n_classes: int  # 0 for unconditional variants
    pixel_range: Literal["tanh", "sigmoid"]  # [-1, 1] or [0, 1] output (see repro.data.base)
    feature_dim: int  # length of Discriminator.feature_vector(x); 0 if not defined
    description: str


class Generator(nn.Module):
    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, z_dim) [, (B,) int64 labels] -> (B, C, H, W) images."""
        raise NotImplementedError


class Discriminator(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) [, (B,) labels] -> (B,) logits (pre-sigmoid)."""
        raise NotImplementedError

    def layer_outputs(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Post-activation output of every conv layer, first to last: [(B, C_i, H_i, W_i), ...]."""
        raise NotImplementedError

    def feature_vector(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, feature_dim): the paper's pooled, concatenated D features."""
        raise NotImplementedError


class Variant:
    """Registry entry: builds fresh, N(0, 0.02)-initialised G and D."""

    spec: VariantSpec

    def build_generator(self) -> Generator:
        raise NotImplementedError

    def build_discriminator(self) -> Discriminator:
        raise NotImplementedError

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
        """(n, z_dim) latent codes from the variant's prior."""
        if self.spec.z_dist == "uniform":
            z = torch.rand(n, self.spec.z_dim, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(n, self.spec.z_dim, generator=generator, device=device)
        return z


V = TypeVar("V", bound=Variant)


def register(variant: V) -> V:
    """Registers `variant` under its spec's name in repro.registry.MODELS; returns it."""
    return MODELS.register(variant.spec.name)(variant)
