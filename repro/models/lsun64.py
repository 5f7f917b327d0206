"""`lsun64`: the paper's Fig. 1 generator (64x64 LSUN bedrooms) and its mirrored discriminator.

  G: z (B, 100) uniform -> linear (B, 16384) BN1d ReLU -> (B, 1024, 4, 4)
     -> T-conv 5x5 s2 (B, 512, 8, 8) -> (B, 256, 16, 16) -> (B, 128, 32, 32) [each BN ReLU]
     -> (B, 3, 64, 64) tanh
  D: x (B, 3, 64, 64) -> conv 5x5 s2 (B, 128, 32, 32) [no BN] -> (B, 256, 16, 16)
     -> (B, 512, 8, 8) -> (B, 1024, 4, 4) [BN; LeakyReLU 0.2 each] -> linear 16384 -> 1

feature_vector: each conv layer max-pooled to a 4x4 grid and concatenated,
16*(128+256+512+1024) = 30720. This recipe is the harness's (the same as for the 32x32 models);
the paper extracts no features from its LSUN model.
The paper's figure gives only G; D mirrors it as the paper's text describes (strided convs,
BN everywhere except the input layer, one sigmoid output on the flattened last conv layer).
"""

from __future__ import annotations

from repro.models.base import VariantSpec
from repro.models.layers import ConvDiscriminator, ConvGenerator, FactoryVariant

LSUN64_SPEC = VariantSpec(
    name="lsun64", image_size=64, channels=3, z_dim=100, z_dist="uniform", n_classes=0,
    pixel_range="tanh", feature_dim=16 * (128 + 256 + 512 + 1024),
    description="Fig. 1 64x64 LSUN generator + mirrored D (harness 30720-d features)",
)


def lsun64_generator() -> ConvGenerator:
    return ConvGenerator(z_dim=100, base_channels=1024, base_size=4, channels=[512, 256, 128, 3],
                         strides=[2, 2, 2, 2], kernel=5)


def lsun64_discriminator() -> ConvDiscriminator:
    return ConvDiscriminator(in_channels=3, image_size=64, channels=[128, 256, 512, 1024],
                             strides=[2, 2, 2, 2], kernel=5)


LSUN64 = FactoryVariant(LSUN64_SPEC, lsun64_generator, lsun64_discriminator)

# The same architecture at a quarter of the channel width (1/16 of the compute), so that the
# figure stages of the CPU profiles (`smoke`, `demo`) train a 64x64 model in minutes. A named
# deviation wherever it is used: the paper's Fig. 1 model is `lsun64`.
LSUN64_SMALL_SPEC = VariantSpec(
    name="lsun64_small", image_size=64, channels=3, z_dim=100, z_dist="uniform", n_classes=0,
    pixel_range="tanh", feature_dim=16 * (32 + 64 + 128 + 256),
    description="lsun64 at 1/4 channel width (CPU profiles; a deviation from Fig. 1)",
)


def lsun64_small_generator() -> ConvGenerator:
    return ConvGenerator(z_dim=100, base_channels=256, base_size=4, channels=[128, 64, 32, 3],
                         strides=[2, 2, 2, 2], kernel=5)


def lsun64_small_discriminator() -> ConvDiscriminator:
    return ConvDiscriminator(in_channels=3, image_size=64, channels=[32, 64, 128, 256],
                             strides=[2, 2, 2, 2], kernel=5)


LSUN64_SMALL = FactoryVariant(LSUN64_SMALL_SPEC, lsun64_small_generator, lsun64_small_discriminator)
