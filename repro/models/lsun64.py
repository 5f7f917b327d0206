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

from repro.models.base import VariantSpec, register
from repro.models.layers import ConvDiscriminator, ConvGenerator, FactoryVariant


def _variant(name: str, width: int, description: str) -> FactoryVariant:
    """The Fig. 1 architecture with channels (width, width/2, width/4, width/8) below 4x4,
    registered under `name`."""
    chans = [width // 2, width // 4, width // 8]
    spec = VariantSpec(name=name, image_size=64, channels=3, z_dim=100, z_dist="uniform",
                       n_classes=0, pixel_range="tanh",
                       feature_dim=16 * (width // 8 + width // 4 + width // 2 + width),
                       description=description)
    return register(FactoryVariant(
        spec,
        lambda: ConvGenerator(z_dim=100, base_channels=width, base_size=4, channels=[*chans, 3],
                              strides=[2, 2, 2, 2], kernel=5),
        lambda: ConvDiscriminator(in_channels=3, image_size=64, channels=[*chans[::-1], width],
                                  strides=[2, 2, 2, 2], kernel=5)))


LSUN64 = _variant("lsun64", 1024,
                  "Fig. 1 64x64 LSUN generator + mirrored D (harness 30720-d features)")
# The same architecture at a quarter of the channel width (1/16 of the compute), so that the
# figure stages of the CPU profiles (`smoke`, `demo`) train a 64x64 model in minutes. A named
# deviation wherever it is used: the paper's Fig. 1 model is `lsun64`.
LSUN64_SMALL = _variant("lsun64_small", 256,
                        "lsun64 at 1/4 channel width (CPU profiles; a deviation from Fig. 1)")
LSUN64_SPEC, LSUN64_SMALL_SPEC = LSUN64.spec, LSUN64_SMALL.spec
