"""Linear-probe building blocks of Tables 1 and 2: draws, splits, C selection, representations,
the supervised baseline, and the authors' port stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.errors import ReproError
from repro.eval.probe import (FeatureSettings, choose_C, draw_rng, per_class_draw, representation,
                              split_off, svm_draws)
from repro.eval.supervised import SearchSpace, random_search, sample_trials
from repro.registry import MODELS


def _blobs(n=300, d=40, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    X = (rng.normal(size=(len(y), d)) + 2.0 * np.eye(k, d)[y] * 3).astype(np.float32)
    return X, y


def test_per_class_draw_is_balanced_seeded_and_refuses_small_classes():
    y = np.repeat(np.arange(4), 25)
    a = per_class_draw(y, 10, draw_rng(0, 0))
    assert np.array_equal(np.bincount(y[a]), [10] * 4) and len(set(a)) == 40
    assert np.array_equal(a, per_class_draw(y, 10, draw_rng(0, 0)))
    assert not np.array_equal(a, per_class_draw(y, 10, draw_rng(0, 1)))
    with pytest.raises(ReproError, match="fewer than the 30 per class"):
        per_class_draw(y, 30, draw_rng(0, 0))


def test_split_off_partitions_and_checks_size():
    rest, val = split_off(100, 20, seed=3)
    assert len(val) == 20 and len(rest) == 80 and not set(rest) & set(val)
    assert np.array_equal(val, split_off(100, 20, seed=3)[1])
    with pytest.raises(ReproError, match="cannot split 100"):
        split_off(100, 100, seed=0)


def test_svm_draws_and_choose_C_on_separable_blobs():
    X, y = _blobs()
    accs = svm_draws(X, y, X, y, per_class=20, draws=3, C=1e-2, solver="torch", seed=0,
                     device=torch.device("cpu"))
    assert len(accs) == 3 and min(accs) > 0.9
    sel = choose_C(X, y, X, y, grid=[1e-6, 1e-2], per_class=20, draws=2, solver="torch", seed=0,
                   device=torch.device("cpu"))
    means = {c: np.mean(v) for c, v in sel["val_acc"].items()}
    assert set(means) == {"1e-06", "0.01"} and all(len(v) == 2 for v in sel["val_acc"].values())
    # the best mean validation accuracy wins; ties go to the first C of the grid
    assert str(sel["best_C"]) == max(means, key=lambda c: (means[c], c == "1e-06"))
    # draw-major C selection (one Gram matrix per draw) scores what per-C draws score
    assert sel["val_acc"]["0.01"] == svm_draws(X, y, X, y, per_class=20, draws=2, C=1e-2,
                                               solver="torch", seed=0, device=torch.device("cpu"))
    full = choose_C(X, y, X, y, grid=[1e-6, 1e-2], per_class=None, draws=1, solver="liblinear",
                    seed=0, device=torch.device("cpu"))
    assert full["best_C"] in (1e-6, 1e-2) and len(full["val_acc"]) == 2
    with pytest.raises(ReproError, match="one draw"):
        svm_draws(X, y, X, y, per_class=None, draws=2, C=1.0, solver="torch", seed=0,
                  device=torch.device("cpu"))


def test_representation_dims_raw_and_discriminator(tmp_path):
    torch.manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    raw = representation(None, "tanh", {"a": images}, bn_images=None, settings=FeatureSettings(),
                         device=torch.device("cpu"))
    assert raw["a"].shape == (20, 3072) and raw["a"].min() >= -1 and raw["a"].max() <= 1
    for name, dim in (("svhn32", 7168), ("imagenet32", 28672)):
        D = MODELS.get(name).build_discriminator()
        feats = representation(D, "tanh", {"train": images, "test": images[:5]}, feature_dim=dim,
                               bn_images=images, settings=FeatureSettings(max_bytes=1),
                               device=torch.device("cpu"), cache_dir=tmp_path, label=name)
        assert feats["train"].shape == (20, dim) and feats["test"].shape == (5, dim)
        assert (tmp_path / f"{name}_train.npy").is_file()  # over max_bytes: streamed to disk
    with pytest.raises(ReproError, match="needs training images"):
        representation(D, "tanh", {"a": images}, feature_dim=28672, bn_images=None,
                       settings=FeatureSettings(), device=torch.device("cpu"))


def test_supervised_random_search_learns_and_reports_validation_and_test():
    space = SearchSpace(lr=(1e-3, 2e-3), epochs=(8,), batch_size=(16,), dropout=(0.0, 0.1))
    trials = sample_trials(space, 3, seed=0)
    assert trials == sample_trials(space, 3, seed=0) and len({t.lr for t in trials}) == 3
    # two classes the D architecture separates trivially: bright vs dark images
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = (torch.rand(64, 3, 32, 32, generator=g) * 80 + 170 * y[:, None, None, None]).to(torch.uint8)
    res = random_search(MODELS.get("svhn32"), (x[:32], y[:32]), (x[32:48], y[32:48]),
                        (x[48:], y[48:]), n_trials=2, space=space, seed=0, n_classes=2,
                        device=torch.device("cpu"))
    assert len(res["trials"]) == 2 and res["best"]["val_err"] == min(t["val_err"] for t in res["trials"])
    assert res["best"]["val_err"] <= 10 and res["best"]["test_err"] <= 10


def test_kmeans_features_shape_and_they_separate_textures():
    from repro.eval.kmeans import KMeansFeatures, KMeansSettings

    g = torch.Generator().manual_seed(0)
    # class 0: horizontal stripes, class 1: vertical stripes, random phase and noise
    n = 40
    y = np.arange(n) % 2
    base = (torch.arange(16) % 4 < 2).float() * 200
    imgs = []
    for k in y:
        img = base.roll(int(torch.randint(0, 4, (1,), generator=g)))[:, None].expand(16, 16)
        img = img if k == 0 else img.T
        imgs.append((img + torch.rand(16, 16, generator=g) * 40).expand(3, 16, 16))
    images = torch.stack(imgs).to(torch.uint8)
    km = KMeansFeatures(KMeansSettings(n_centroids=8, patch=4, n_patches=2000, iterations=5),
                        torch.device("cpu")).fit(images)
    F = km.transform(images)
    assert F.shape == (n, 32) and km.dim == 32 and (F >= 0).all()
    acc = svm_draws(F, y, F, y, per_class=None, draws=1, C=1.0, solver="torch", seed=0,
                    device=torch.device("cpu"), standardize=True)
    assert acc[0] == 1.0
    with pytest.raises(ReproError, match="n_patches"):
        KMeansFeatures(KMeansSettings(n_centroids=100, n_patches=10), torch.device("cpu")).fit(images)
