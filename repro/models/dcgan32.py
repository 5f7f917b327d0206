"""The authors' two 32x32 DCGANs: `imagenet32` (Table 1) and `svhn32` (Table 2).

Both follow the authors' released models (Newmu/dcgan_code) layer for layer, bias-free as
there. `svhn32` matches the released SVHN checkpoint's arrays exactly, so
`repro.models.authors_svhn` can load it into these modules.

imagenet32 (`imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z`), all kernels 3x3 pad 1:
  G: z (B, 256) -> linear (B, 8192) BN1d ReLU -> (B, 512, 4, 4)
     -> T-conv s2 (B, 512, 8, 8) -> s1 (B, 256, 8, 8) -> s2 (B, 256, 16, 16)
     -> s1 (B, 128, 16, 16) -> s2 (B, 128, 32, 32) [each BN ReLU] -> s1 (B, 3, 32, 32) tanh
  D: x (B, 3, 32, 32) -> conv s1 (B, 128, 32, 32) [no BN] -> s2 (B, 128, 16, 16)
     -> s1 (B, 256, 16, 16) -> s2 (B, 256, 8, 8) -> s1 (B, 512, 8, 8) -> s2 (B, 512, 4, 4)
     [LeakyReLU 0.2 each] -> linear 8192 -> 1
  features: every conv layer max-pooled to 4x4, concatenated: 16*(128+128+256+256+512+512)
     = 28672 (the paper's "28672").

svhn32 (`svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb`), kernels 5x5 pad 2:
  G: z (B, 100) normal -> linear (B, 4096) BN1d ReLU -> (B, 256, 4, 4)
     -> T-conv s2 (B, 128, 8, 8) BN ReLU -> (B, 64, 16, 16) BN ReLU -> (B, 3, 32, 32) tanh
  D: x (B, 3, 32, 32) -> conv s2 (B, 64, 16, 16) [no BN] -> (B, 128, 8, 8) BN
     -> (B, 256, 4, 4) BN [LeakyReLU 0.2 each] -> linear 4096 -> 1
  features: layer 1 max-pooled 4x4/4, layer 2 2x2/2, layer 3 as is: 16*(64+128+256) = 7168.
"""

from __future__ import annotations

from repro.models.base import VariantSpec, register
from repro.models.layers import ConvDiscriminator, ConvGenerator, FactoryVariant

IMAGENET32_SPEC = VariantSpec(
    name="imagenet32", image_size=32, channels=3, z_dim=256, z_dist="uniform", n_classes=0,
    pixel_range="tanh", feature_dim=16 * (128 + 128 + 256 + 256 + 512 + 512),
    description="authors' 32x32 ImageNet-1k DCGAN (Table 1): 6 conv 3x3, 28672-d features",
)

SVHN32_SPEC = VariantSpec(
    name="svhn32", image_size=32, channels=3, z_dim=100, z_dist="normal", n_classes=0,
    pixel_range="tanh", feature_dim=16 * (64 + 128 + 256),
    description="authors' SVHN DCGAN (Table 2): 3 conv 5x5, 7168-d features",
)


def imagenet32_generator() -> ConvGenerator:
    return ConvGenerator(z_dim=256, base_channels=512, base_size=4,
                         channels=[512, 256, 256, 128, 128, 3], strides=[2, 1, 2, 1, 2, 1],
                         kernel=3)


def imagenet32_discriminator() -> ConvDiscriminator:
    return ConvDiscriminator(in_channels=3, image_size=32,
                             channels=[128, 128, 256, 256, 512, 512], strides=[1, 2, 1, 2, 1, 2],
                             kernel=3)


def svhn32_generator() -> ConvGenerator:
    return ConvGenerator(z_dim=100, base_channels=256, base_size=4, channels=[128, 64, 3],
                         strides=[2, 2, 2], kernel=5)


def svhn32_discriminator() -> ConvDiscriminator:
    return ConvDiscriminator(in_channels=3, image_size=32, channels=[64, 128, 256],
                             strides=[2, 2, 2], kernel=5)


IMAGENET32 = register(FactoryVariant(IMAGENET32_SPEC, imagenet32_generator,
                                     imagenet32_discriminator))
SVHN32 = register(FactoryVariant(SVHN32_SPEC, svhn32_generator, svhn32_discriminator))
