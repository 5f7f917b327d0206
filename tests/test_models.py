"""Model variants: every registered variant against its spec and the paper's architecture
facts (layer shapes, init, label handling, feature pooling) and the listing CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.errors import ReproError
from repro.registry import MODELS

# Architecture facts from the protocol (post-activation D layer outputs, (C, H, W)), for the
# variants the paper describes; every registered variant gets the generic checks too.
LAYER_SHAPES = {
    "imagenet32": [(128, 32, 32), (128, 16, 16), (256, 16, 16), (256, 8, 8), (512, 8, 8),
                   (512, 4, 4)],
    "svhn32": [(64, 16, 16), (128, 8, 8), (256, 4, 4)],
    "svhn32_authors": [(64, 16, 16), (128, 8, 8), (256, 4, 4)],
    "lsun64": [(128, 32, 32), (256, 16, 16), (512, 8, 8), (1024, 4, 4)],
    "lsun64_small": [(32, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4)],
    "mnist_cond": [(64, 14, 14), (128, 7, 7)],
    "gan_mlp": [(1024, 1, 1), (1024, 1, 1)],
}
FEATURE_DIMS = {"imagenet32": 28672, "svhn32": 7168, "svhn32_authors": 7168, "lsun64": 30720,
                "lsun64_small": 7680, "mnist_cond": 0, "gan_mlp": 0}
B = 4


def _labels(spec, n=B):
    return torch.arange(n) % spec.n_classes if spec.n_classes else None


def test_every_variant_the_facts_protocols_and_profiles_name_is_registered():
    from repro.config import REPO_PROFILES, available_profiles, load_profile_by_name
    from repro.tables import protocols

    named = set(LAYER_SHAPES) | set(FEATURE_DIMS)
    named |= {r.variant for p in protocols().values() for r in p.rows.values() if r.variant}
    for profile in available_profiles(REPO_PROFILES):
        named |= {t["variant"] for t in load_profile_by_name(profile)["train"].values()}
    assert named <= set(MODELS.names())


def test_every_variant_a_model_module_defines_registers_itself_under_its_name():
    """The registry's contract for `model` entries: a module of repro.models that defines a
    Variant registers it (repro.models.base.register) under its spec's name, so no list of
    variants exists to forget one in."""
    import importlib

    from repro.models.base import Variant
    from repro.registry import _PROVIDERS, provider_modules

    defined = {}
    for module in (m for spec in _PROVIDERS["model"] for m in provider_modules(spec)):
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, Variant):
                defined[value.spec.name] = value
    assert defined and set(defined) == set(MODELS.names())
    assert all(MODELS.get(name) is variant for name, variant in defined.items())


@pytest.mark.parametrize("name", MODELS.names())
def test_shapes_ranges_and_features(name):
    torch.manual_seed(0)
    variant = MODELS.get(name)
    spec = variant.spec
    assert spec.name == name and spec.feature_dim == FEATURE_DIMS.get(name, spec.feature_dim)
    G, D = variant.build_generator(), variant.build_discriminator()
    y = _labels(spec)
    x = G(variant.sample_z(B), y)
    assert x.shape == (B, spec.channels, spec.image_size, spec.image_size)
    lo, hi = (-1.0, 1.0) if spec.pixel_range == "tanh" else (0.0, 1.0)
    assert lo <= x.min().item() and x.max().item() <= hi
    logits = D(x, y)
    assert logits.shape == (B,) and torch.isfinite(logits).all()
    layers = D.layer_outputs(x, y)
    shapes = [tuple(t.shape[1:]) for t in layers]
    assert shapes == LAYER_SHAPES.get(name, shapes)
    # the paper's recipe: every layer max-pooled to 4x4 and concatenated
    assert spec.feature_dim in (0, 16 * sum(c for c, _, _ in shapes))
    if spec.feature_dim:
        f = D.feature_vector(x)
        assert f.shape == (B, spec.feature_dim) and torch.isfinite(f).all()
    else:
        with pytest.raises(ReproError, match="feature_dim 0"):
            D.feature_vector(x)


@pytest.mark.parametrize("name", MODELS.names())
def test_init_is_dcgan(name):
    torch.manual_seed(0)
    variant = MODELS.get(name)
    for net in (variant.build_generator(), variant.build_discriminator()):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                w = m.weight
                assert m.bias is None  # bias-free, as the authors' parameter lists
                assert abs(w.std().item() - 0.02) < 0.02 * 0.15 and abs(w.mean().item()) < 0.004
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
                assert abs(m.weight.mean().item() - 1) < 0.01 and (m.bias == 0).all()
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                assert name in ("mnist_cond", "gan_mlp")  # affine=False only for Table 3


def test_sampling_prior():
    g = torch.Generator().manual_seed(0)
    z = MODELS.get("imagenet32").sample_z(1000, generator=g)
    assert z.shape == (1000, 256) and -1 <= z.min() and z.max() <= 1
    z = MODELS.get("svhn32").sample_z(1000, generator=g)
    assert z.shape == (1000, 100) and z.min() < -2 and abs(z.std().item() - 1) < 0.05


def test_unknown_variant_lists_valid_names():
    with pytest.raises(ReproError) as err:
        MODELS.get("dcgan128")
    assert all(n in str(err.value) for n in LAYER_SHAPES)


@pytest.mark.parametrize("name", ["mnist_cond", "gan_mlp"])
def test_conditional_variants_need_valid_labels(name):
    variant = MODELS.get(name)
    G, D = variant.build_generator(), variant.build_discriminator()
    z = variant.sample_z(B)
    with pytest.raises(ReproError, match="class-conditional"):
        G(z)
    with pytest.raises(ReproError, match="class-conditional"):
        D(torch.rand(B, 1, 28, 28))
    with pytest.raises(ReproError, match=r"\[0, 10\)"):
        G(z, torch.full((B,), 10))
    # the label changes the output: it really is conditioning
    G.eval()
    a, b = G(z, torch.zeros(B, dtype=torch.long)), G(z, torch.ones(B, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_svhn32_features_equal_authors_pooling():
    """adaptive 4x4 max pool == the authors' dnn_pool 4x4/4, 2x2/2 and identity."""
    torch.manual_seed(0)
    D = MODELS.get("svhn32").build_discriminator()
    x = torch.rand(B, 3, 32, 32) * 2 - 1
    h1, h2, h3 = D.layer_outputs(x)
    expected = torch.cat([F.max_pool2d(h1, 4, 4).flatten(1), F.max_pool2d(h2, 2, 2).flatten(1),
                          h3.flatten(1)], dim=1)
    assert torch.equal(D.feature_vector(x), expected)


def test_models_cli_json_and_table():
    out = subprocess.run([sys.executable, "-m", "repro.models", "--json"], capture_output=True,
                         text=True, check=True).stdout
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["imagenet32"]["feature_dim"] == 28672 and rows["svhn32"]["feature_dim"] == 7168
    for name, row in rows.items():
        variant = MODELS.get(name)
        assert row["g_params"] == sum(p.numel() for p in variant.build_generator().parameters())
        assert row["d_params"] == sum(p.numel() for p in variant.build_discriminator().parameters())
        assert row["image_size"] == variant.spec.image_size and row["z_dim"] == variant.spec.z_dim
    from repro.models.__main__ import format_table, variant_rows
    table = format_table(variant_rows())
    assert all(name in table for name in LAYER_SHAPES) and "28672" in table
