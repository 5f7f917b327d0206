"""Contract over every registered model variant: shapes, ranges, features, init."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from repro.registry import MODELS

EXPECTED_FEATURES = {"imagenet32": 28672, "svhn32": 7168}


@pytest.mark.parametrize("name", MODELS.names())
def test_variant_contract(name):
    torch.manual_seed(0)
    variant = MODELS.get(name)
    spec = variant.spec
    G, D = variant.build_generator(), variant.build_discriminator()
    b = 4
    z = variant.sample_z(b)
    assert z.shape == (b, spec.z_dim)
    y = torch.randint(0, spec.n_classes, (b,)) if spec.n_classes else None
    x = G(z, y)
    assert x.shape == (b, spec.channels, spec.image_size, spec.image_size)
    lo, hi = (-1, 1) if spec.pixel_range == "tanh" else (0, 1)
    assert x.min() >= lo and x.max() <= hi
    logits = D(x, y)
    assert logits.shape == (b,)
    layers = D.layer_outputs(x, y)
    assert layers and all(t.shape[0] == b and t.dim() == 4 for t in layers)
    if spec.feature_dim:
        assert D.feature_vector(x).shape == (b, spec.feature_dim)
    if name in EXPECTED_FEATURES:
        assert spec.feature_dim == EXPECTED_FEATURES[name]
    # DCGAN init: conv/linear weights ~ N(0, 0.02)
    weights = torch.cat([m.weight.flatten() for m in G.modules()
                         if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002


def test_models_cli_json_reports_feature_dims():
    out = subprocess.run([sys.executable, "-m", "repro.models", "--json"], capture_output=True,
                         text=True, check=True).stdout
    rows = json.loads(out)
    rows = {r["name"]: r for r in (rows if isinstance(rows, list) else rows.values())}
    assert set(rows) == set(MODELS.names())
    for name, dim in EXPECTED_FEATURES.items():
        assert rows[name]["feature_dim"] == dim
    for row in rows.values():
        assert {"g_params", "d_params", "image_size", "z_dim", "feature_dim"} <= set(row)
