"""Registers every model variant in `repro.registry.MODELS` (imported by the registry on first use).

| name       | what                                                           | module   |
|------------|----------------------------------------------------------------|----------|
| imagenet32 | authors' 32x32 ImageNet DCGAN, Table 1 features (28672-d)      | dcgan32  |
| svhn32     | authors' SVHN DCGAN, Table 2 features (7168-d); checkpoint port| dcgan32  |
| svhn32_authors | svhn32 with the authors' BN conventions (ported checkpoint) | authors_svhn |
| lsun64     | Fig. 1 64x64 LSUN generator + mirrored D                       | lsun64   |
| lsun64_small | lsun64 at 1/4 width, for the CPU profiles' figures (a deviation) | lsun64 |
| mnist_cond | authors' class-conditional MNIST DCGAN, Table 3                | mnist    |
| gan_mlp    | fully connected conditional GAN baseline, Table 3 (harness's sizes) | mnist |
"""

from __future__ import annotations

from repro.models.authors_svhn import SVHN32_AUTHORS
from repro.models.dcgan32 import IMAGENET32, SVHN32
from repro.models.lsun64 import LSUN64, LSUN64_SMALL
from repro.models.mnist import GAN_MLP, MNIST_COND
from repro.registry import MODELS

for _variant in (IMAGENET32, SVHN32, SVHN32_AUTHORS, LSUN64, LSUN64_SMALL, MNIST_COND, GAN_MLP):
    MODELS.register(_variant.spec.name)(_variant)
