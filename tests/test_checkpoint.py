"""Checkpoint loading: wrong variant, corrupt and missing files give one clear error."""

from __future__ import annotations

import pytest
import torch

from repro.errors import ReproError
from repro.models.checkpoint import build_from_checkpoint
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer

from conftest import tiny_images


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "seed0.pt"
    cfg = TrainConfig(variant="gan_mlp", dataset="tiny", epochs=1, batch_size=16, max_steps=1)
    GANTrainer(cfg, tiny_images(32, 1, 28), torch.device("cpu"), path).run(seed=0)
    return path


def test_round_trip(ckpt):
    variant, G, D, meta = build_from_checkpoint(ckpt, expect_variant="gan_mlp")
    assert variant.spec.name == "gan_mlp" and meta["seed"] == 0
    assert G(variant.sample_z(4), torch.zeros(4, dtype=torch.long)).shape == (4, 1, 28, 28)


def test_other_variant_is_refused(ckpt):
    with pytest.raises(ReproError, match="holds variant 'gan_mlp', expected 'mnist_cond'"):
        build_from_checkpoint(ckpt, expect_variant="mnist_cond")


def test_corrupt_and_missing(ckpt, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ReproError, match="unreadable"):
        build_from_checkpoint(bad)
    with pytest.raises(ReproError, match="not found"):
        build_from_checkpoint(tmp_path / "none.pt")
