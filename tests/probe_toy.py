"""A tiny GAN laid out like the common PyTorch DCGAN example (`netD.main` an nn.Sequential),
for the `python -m repro.probe` tests (PYTHONPATH=tests). The README's worked example is
docs/examples/mygan.py."""

from __future__ import annotations

import torch
from torch import nn


class NetD(nn.Module):
    def __init__(self, nc: int = 3, ndf: int = 8):
        super().__init__()
        self.main = nn.Sequential(  # (B, nc, 32, 32)
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),  # (B, ndf, 16, 16)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # (B, 2ndf, 8, 8)
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),  # (B, 4ndf, 4, 4)
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),  # (B, 1, 1, 1)
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def make_netD() -> NetD:
    torch.manual_seed(0)
    return NetD()


class CondG(nn.Module):
    """z (16) and a one-hot label (10) -> a (1, 28, 28) image in [-1, 1]."""

    def __init__(self, z_dim: int = 16, n_classes: int = 10):
        super().__init__()
        self.n_classes = n_classes
        self.net = nn.Sequential(nn.Linear(z_dim + n_classes, 64), nn.ReLU(),
                                 nn.Linear(64, 28 * 28), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(y, self.n_classes).float()
        return self.net(torch.cat([z, onehot], 1)).view(-1, 1, 28, 28)  # (B, 1, 28, 28)


def make_G() -> CondG:
    torch.manual_seed(0)
    return CondG()


def make_netD_grey() -> NetD:
    """A 1-channel 32x32 D (what most users train on MNIST-like data)."""
    torch.manual_seed(0)
    return NetD(nc=1)


class CondG32(nn.Module):
    """z (16) and a one-hot label (10) -> a (1, 32, 32) image in [-1, 1] whose outer 2-px
    frame is black, as a G trained on 28x28 digits zero-padded to 32x32 draws them."""

    def __init__(self, z_dim: int = 16, n_classes: int = 10):
        super().__init__()
        self.inner = CondG(z_dim, n_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(self.inner(z, y), (2, 2, 2, 2), value=-1.0)  # (B, 1, 32, 32)


def make_G32() -> CondG32:
    torch.manual_seed(0)
    return CondG32()
