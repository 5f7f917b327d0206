"""Class-conditional MNIST models of Table 3: `mnist_cond` (DCGAN) and `gan_mlp` (the fully
connected "GAN" baseline).

Both take labels y (B,) int64 in [0, 10); the one-hot label (10) is concatenated to z, to the
input of every hidden layer, and (as 10 constant feature maps) to every conv input, as in the
authors' mnist/train_cond_dcgan.py. Pixels are in [0, 1] (sigmoid output).
BatchNorm has no learnable scale or shift (affine=False): the paper reports that removing them
helped both GAN models. No layer has a bias, as in the authors' code.

mnist_cond:
  G: [z (B, 100), y] (B, 110) -> FC (B, 1024) BN ReLU -> [h, y] (B, 1034) -> FC (B, 6272) BN ReLU
     -> (B, 128, 7, 7) -> [h, y maps] (B, 138, 7, 7) -> T-conv 5x5 s2 (B, 64, 14, 14) BN ReLU
     -> [h, y maps] (B, 74, 14, 14) -> T-conv 5x5 s2 (B, 1, 28, 28) sigmoid
  D: [x, y maps] (B, 11, 28, 28) -> conv 5x5 s2 (B, 64, 14, 14) LReLU (no BN)
     -> [h, y maps] (B, 74, 14, 14) -> conv 5x5 s2 (B, 128, 7, 7) BN LReLU -> flatten (B, 6272)
     -> [h, y] (B, 6282) -> FC (B, 1024) BN LReLU -> [h, y] (B, 1034) -> FC -> (B,) logits

gan_mlp (NAMED DEVIATION: the paper gives no architecture for its permutation-invariant GAN
baseline; these sizes are the harness's choice, mirroring mnist_cond's fully connected widths):
  G: [z (B, 100), y] -> FC 1024 BN ReLU -> [h, y] -> FC 1024 BN ReLU -> [h, y] -> FC 784 sigmoid
     -> (B, 1, 28, 28)
  D: [flatten x (B, 784), y] -> FC 1024 LReLU (no BN) -> [h, y] -> FC 1024 BN LReLU -> [h, y]
     -> FC -> (B,) logits

Neither defines features (feature_dim 0): Table 3 classifies raw pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from repro.errors import ReproError
from repro.models.base import Discriminator, Generator, VariantSpec, register
from repro.models.layers import (LRELU_SLOPE, FactoryVariant, concat_maps, concat_vector,
                                 init_weights, one_hot)

N_CLASSES = 10
Z_DIM = 100
LRELU = nn.LeakyReLU(LRELU_SLOPE)


def _no_features(name: str) -> ReproError:
    return ReproError(f"{name} defines no feature vector (feature_dim 0): Table 3 uses raw "
                      f"pixels; use a variant with feature_dim > 0 (see `python -m repro.models`)")


# --- mnist_cond -----------------------------------------------------------------------------

class MnistCondGenerator(Generator):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(Z_DIM + N_CLASSES, 1024, bias=False)
        self.bn1 = nn.BatchNorm1d(1024, affine=False)
        self.fc2 = nn.Linear(1024 + N_CLASSES, 128 * 7 * 7, bias=False)
        self.bn2 = nn.BatchNorm1d(128 * 7 * 7, affine=False)
        self.deconv3 = nn.ConvTranspose2d(128 + N_CLASSES, 64, 5, stride=2, padding=2,
                                          output_padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64, affine=False)
        self.deconv4 = nn.ConvTranspose2d(64 + N_CLASSES, 1, 5, stride=2, padding=2,
                                          output_padding=1, bias=False)
        init_weights(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y1h = one_hot(y, N_CLASSES, z.shape[0], "mnist_cond generator")  # (B, 10)
        h = torch.relu(self.bn1(self.fc1(concat_vector(z, y1h))))  # (B, 1024)
        h = torch.relu(self.bn2(self.fc2(concat_vector(h, y1h))))  # (B, 6272)
        h = h.view(-1, 128, 7, 7)  # (B, 128, 7, 7)
        h = torch.relu(self.bn3(self.deconv3(concat_maps(h, y1h))))  # (B, 64, 14, 14)
        return torch.sigmoid(self.deconv4(concat_maps(h, y1h)))  # (B, 1, 28, 28) in [0, 1]


class MnistCondDiscriminator(Discriminator):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1 + N_CLASSES, 64, 5, stride=2, padding=2, bias=False)
        self.conv2 = nn.Conv2d(64 + N_CLASSES, 128, 5, stride=2, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(128, affine=False)
        self.fc3 = nn.Linear(128 * 7 * 7 + N_CLASSES, 1024, bias=False)
        self.bn3 = nn.BatchNorm1d(1024, affine=False)
        self.fc4 = nn.Linear(1024 + N_CLASSES, 1, bias=False)
        init_weights(self)

    def _forward(self, x: torch.Tensor, y: torch.Tensor | None):
        y1h = one_hot(y, N_CLASSES, x.shape[0], "mnist_cond discriminator")  # (B, 10)
        h1 = LRELU(self.conv1(concat_maps(x, y1h)))  # (B, 64, 14, 14)
        h2 = LRELU(self.bn2(self.conv2(concat_maps(h1, y1h))))  # (B, 128, 7, 7)
        h3 = LRELU(self.bn3(self.fc3(concat_vector(h2.flatten(1), y1h))))  # (B, 1024)
        logit = self.fc4(concat_vector(h3, y1h)).squeeze(1)  # (B,)
        return [h1, h2], logit

    def layer_outputs(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        return self._forward(x, y)[0]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self._forward(x, y)[1]

    def feature_vector(self, x: torch.Tensor) -> torch.Tensor:
        raise _no_features("mnist_cond")


# --- gan_mlp --------------------------------------------------------------------------------

class MlpGenerator(Generator):
    def __init__(self, hidden: int = 1024):
        super().__init__()
        self.fc1 = nn.Linear(Z_DIM + N_CLASSES, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden, affine=False)
        self.fc2 = nn.Linear(hidden + N_CLASSES, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden, affine=False)
        self.fc3 = nn.Linear(hidden + N_CLASSES, 28 * 28, bias=False)
        init_weights(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y1h = one_hot(y, N_CLASSES, z.shape[0], "gan_mlp generator")  # (B, 10)
        h = torch.relu(self.bn1(self.fc1(concat_vector(z, y1h))))  # (B, 1024)
        h = torch.relu(self.bn2(self.fc2(concat_vector(h, y1h))))  # (B, 1024)
        x = torch.sigmoid(self.fc3(concat_vector(h, y1h)))  # (B, 784)
        return x.view(-1, 1, 28, 28)  # (B, 1, 28, 28) in [0, 1]


class MlpDiscriminator(Discriminator):
    def __init__(self, hidden: int = 1024):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28 + N_CLASSES, hidden, bias=False)
        self.fc2 = nn.Linear(hidden + N_CLASSES, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden, affine=False)
        self.fc3 = nn.Linear(hidden + N_CLASSES, 1, bias=False)
        init_weights(self)

    def _forward(self, x: torch.Tensor, y: torch.Tensor | None):
        y1h = one_hot(y, N_CLASSES, x.shape[0], "gan_mlp discriminator")  # (B, 10)
        h1 = LRELU(self.fc1(concat_vector(x.flatten(1), y1h)))  # (B, 1024)
        h2 = LRELU(self.bn2(self.fc2(concat_vector(h1, y1h))))  # (B, 1024)
        logit = self.fc3(concat_vector(h2, y1h)).squeeze(1)  # (B,)
        return [h1, h2], logit

    def layer_outputs(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """No conv layers: the hidden FC activations, as (B, 1024, 1, 1) maps."""
        return [h[:, :, None, None] for h in self._forward(x, y)[0]]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self._forward(x, y)[1]

    def feature_vector(self, x: torch.Tensor) -> torch.Tensor:
        raise _no_features("gan_mlp")


MNIST_COND = register(FactoryVariant(
    VariantSpec(name="mnist_cond", image_size=28, channels=1, z_dim=Z_DIM, z_dist="uniform",
                n_classes=N_CLASSES, pixel_range="sigmoid", feature_dim=0,
                description="authors' class-conditional MNIST DCGAN (Table 3), BN without affine"),
    MnistCondGenerator, MnistCondDiscriminator))

GAN_MLP = register(FactoryVariant(
    VariantSpec(name="gan_mlp", image_size=28, channels=1, z_dim=Z_DIM, z_dist="uniform",
                n_classes=N_CLASSES, pixel_range="sigmoid", feature_dim=0,
                description="fully connected conditional GAN baseline (Table 3); sizes are the "
                            "harness's (deviation)"),
    MlpGenerator, MlpDiscriminator))
