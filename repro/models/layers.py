"""Shared building blocks of the model zoo.

- `init_weights`: the paper's N(0, 0.02) for every conv / transposed conv / linear weight;
  BN scale ~ N(1, 0.02) (as in the authors' Theano code) and shift 0.
- Label helpers for the conditional MNIST models (one-hot as a vector or as constant maps).
- `ConvGenerator` / `ConvDiscriminator`: the all-convolutional DCGAN pair (project z, BN, ReLU,
  strided transposed convs, tanh / strided convs, BN, LeakyReLU 0.2, one linear logit) that
  `imagenet32`, `svhn32` and `lsun64` instantiate with their own widths, kernels and strides.
- `pooled_features`: each conv layer's output max-pooled to a 4x4 grid, concatenated.

No layer has a bias term: the authors' released parameter lists (Newmu/dcgan_code) hold none
(BN's shift takes that role), and `svhn32` must match its checkpoint exactly, so the zoo follows
the authors' code throughout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repro.errors import ReproError
from repro.models.base import Discriminator, Generator, Variant, VariantSpec

INIT_STD = 0.02
LRELU_SLOPE = 0.2

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def init_weights(module: nn.Module) -> nn.Module:
    """In place: conv/linear weights ~ N(0, 0.02), biases 0; BN scale ~ N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BN) and m.affine:
            nn.init.normal_(m.weight, 1.0, INIT_STD)
            nn.init.zeros_(m.bias)
    return module


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BN)]


def use_batch_statistics(module: nn.Module) -> nn.Module:
    """Make every BN of `module` normalise with the current batch's statistics, in train AND eval
    mode (drops the running buffers; torch then always takes batch stats)."""
    for bn in batchnorms(module):
        bn.track_running_stats = False
        bn.running_mean = None
        bn.running_var = None
        bn.num_batches_tracked = None
    return module


# --- labels ---------------------------------------------------------------------------------

def one_hot(y: torch.Tensor | None, n_classes: int, batch: int, who: str) -> torch.Tensor:
    """(B,) int64 labels -> (B, n_classes) float one-hot; clear errors for missing/bad labels."""
    if y is None:
        raise ReproError(f"{who} is class-conditional: pass labels y, a (B,) int64 tensor in "
                         f"[0, {n_classes})")
    if y.dim() != 1 or y.shape[0] != batch or y.dtype not in (torch.int64, torch.int32):
        raise ReproError(f"{who}: labels must be a ({batch},) integer tensor, got "
                         f"{tuple(y.shape)} {y.dtype}")
    if batch and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ReproError(f"{who}: labels must lie in [0, {n_classes}), got "
                         f"[{int(y.min())}, {int(y.max())}]")
    return F.one_hot(y.long(), n_classes).float()


def concat_vector(h: torch.Tensor, y1h: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, K) -> (B, D + K)."""
    return torch.cat([h, y1h], dim=1)


def concat_maps(h: torch.Tensor, y1h: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W), (B, K) -> (B, C + K, H, W): the label as K constant feature maps."""
    b, _, hh, ww = h.shape
    return torch.cat([h, y1h[:, :, None, None].expand(b, y1h.shape[1], hh, ww)], dim=1)


# --- features -------------------------------------------------------------------------------

FEATURE_GRID = 4


def pooled_features(layers: list[torch.Tensor]) -> torch.Tensor:
    """[(B, C_i, H_i, W_i)] -> (B, 16 * sum C_i): each map max-pooled to a 4x4 grid.

    For H_i a multiple of 4 (all zoo layers: 64, 32, 16, 8, 4) adaptive max pooling uses
    non-overlapping H_i/4 x H_i/4 windows with stride H_i/4, i.e. exactly the authors' recipe
    (SVHN: `dnn_pool` 4x4/4 on layer 1, 2x2/2 on layer 2, identity on layer 3). Flattening is
    channel-major (C, 4, 4), as Theano's `T.flatten(h, 2)`.
    """
    for h in layers:
        if h.shape[-1] % FEATURE_GRID or h.shape[-2] % FEATURE_GRID:
            raise ReproError(f"feature layer of size {tuple(h.shape[-2:])} is not a multiple of "
                             f"{FEATURE_GRID}; feed images of the variant's image_size")
    return torch.cat([F.adaptive_max_pool2d(h, FEATURE_GRID).flatten(1) for h in layers], dim=1)


# --- the all-convolutional DCGAN pair -------------------------------------------------------

def _same_or_double(kernel: int, stride: int) -> dict:
    """Padding so that a stride-s (transposed) conv maps size H to H/s (to s*H)."""
    return {"kernel_size": kernel, "stride": stride, "padding": kernel // 2}


class ConvGenerator(Generator):
    """z (B, z_dim) -> linear to base_channels x base_size^2 (BN1d over all units, ReLU)
    -> reshape -> transposed convs (BN, ReLU; last: tanh, no BN) -> (B, C, S, S)."""

    def __init__(self, z_dim: int, base_channels: int, base_size: int, channels: list[int],
                 strides: list[int], kernel: int):
        super().__init__()
        self.base_channels, self.base_size = base_channels, base_size
        units = base_channels * base_size * base_size
        self.project = nn.Linear(z_dim, units, bias=False)
        self.project_bn = nn.BatchNorm1d(units)
        blocks = []
        c_in = base_channels
        for i, (c_out, s) in enumerate(zip(channels, strides)):
            conv = nn.ConvTranspose2d(c_in, c_out, bias=False, output_padding=s - 1,
                                      **_same_or_double(kernel, s))
            last = i == len(channels) - 1
            blocks.append(nn.Sequential(conv, nn.Tanh()) if last else
                          nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU()))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        init_weights(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # y is ignored: unconditional
        h = F.relu(self.project_bn(self.project(z)))  # (B, C0*S0*S0)
        h = h.view(-1, self.base_channels, self.base_size, self.base_size)  # (B, C0, S0, S0)
        for block in self.blocks:
            h = block(h)  # spatial x stride each
        return h  # (B, C, S, S) in [-1, 1]


class ConvDiscriminator(Discriminator):
    """x (B, C, S, S) -> strided convs (LeakyReLU 0.2; BN on all but the first)
    -> flatten the last (B, C_L, S_L, S_L) -> linear -> (B,) logits."""

    def __init__(self, in_channels: int, image_size: int, channels: list[int],
                 strides: list[int], kernel: int):
        super().__init__()
        blocks = []
        c_in, size = in_channels, image_size
        for i, (c_out, s) in enumerate(zip(channels, strides)):
            conv = nn.Conv2d(c_in, c_out, bias=False, **_same_or_double(kernel, s))
            norm = [] if i == 0 else [nn.BatchNorm2d(c_out)]
            blocks.append(nn.Sequential(conv, *norm, nn.LeakyReLU(LRELU_SLOPE)))
            c_in, size = c_out, size // s
        self.blocks = nn.ModuleList(blocks)
        self.classify = nn.Linear(c_in * size * size, 1, bias=False)
        init_weights(self)

    def layer_outputs(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        outs = []
        h = x  # (B, C, S, S)
        for block in self.blocks:
            h = block(h)  # (B, C_i, H_i, W_i)
            outs.append(h)
        return outs

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.layer_outputs(x)[-1].flatten(1)  # (B, C_L*S_L*S_L)
        return self.classify(h).squeeze(1)  # (B,)

    def feature_vector(self, x: torch.Tensor) -> torch.Tensor:
        return pooled_features(self.layer_outputs(x))  # (B, 16 * sum C_i)


class FactoryVariant(Variant):
    """A Variant whose fresh, initialised G and D come from two zero-argument factories."""

    def __init__(self, spec: VariantSpec, make_generator, make_discriminator):
        self.spec = spec
        self._make_g, self._make_d = make_generator, make_discriminator

    def build_generator(self) -> Generator:
        return self._make_g()

    def build_discriminator(self) -> Discriminator:
        return self._make_d()

    def __repr__(self) -> str:
        return f"<variant {self.spec.name}>"
