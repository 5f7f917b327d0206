"""Generated datasets: determinism, shapes, masks, and that synth_colour10 needs conv features."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from repro.data.loading import load_dataset

GENERATED = ["synth_colour10", "synth_digits", "synth_rooms"]


@pytest.mark.parametrize("name", GENERATED)
def test_deterministic_and_prefix_stable(name):
    a = load_dataset(name, "train", max_images=100, seed=5)
    b = load_dataset(name, "train", max_images=100, seed=5)
    assert torch.equal(a.images, b.images) and a.source == f"generated: {name} train (seed 5)"
    assert (a.labels is None) == (b.labels is None)
    if a.labels is not None:
        assert torch.equal(a.labels, b.labels)
    for key in a.masks:
        assert torch.equal(a.masks[key], b.masks[key])
    prefix = load_dataset(name, "train", max_images=40, seed=5)
    assert torch.equal(prefix.images, a.images[:40])
    assert not torch.equal(load_dataset(name, "train", max_images=40, seed=6).images, prefix.images)
    assert not torch.equal(load_dataset(name, "test", max_images=40, seed=5).images, prefix.images)
    assert not a.real and a.images.dtype == torch.uint8


def test_generation_is_fast():
    start = time.perf_counter()
    data = load_dataset("synth_colour10", "train", max_images=3000)
    # ~0.1 s on an idle CPU; the bound leaves room for a machine shared with other jobs
    assert len(data) == 3000 and time.perf_counter() - start < 15


def _conv_features(images: torch.Tensor) -> torch.Tensor:
    """Random zero-mean 7x7 filters on the contrast-normalised grey image, |response| pooled:
    a stand-in for learned conv features, blind to colour and contrast sign like the classes."""
    x = images.float().mean(1, keepdim=True)
    x = (x - x.mean((2, 3), keepdim=True)) / (x.std((2, 3), keepdim=True) + 1e-3)
    w = torch.randn(32, 1, 7, 7, generator=torch.Generator().manual_seed(0))
    y = F.conv2d(x, w - w.mean((2, 3), keepdim=True), padding=3).abs()
    return torch.cat([y.amax((2, 3)), y.mean((2, 3))], 1)


def test_colour10_beats_raw_pixel_linear_models():
    from sklearn.linear_model import RidgeClassifier
    from sklearn.svm import LinearSVC

    train = load_dataset("synth_colour10", "train", max_images=2000)
    test = load_dataset("synth_colour10", "test", max_images=1000)
    assert torch.bincount(train.labels, minlength=10).min() > 150
    raw_train = train.images.flatten(1).float().numpy() / 255 - 0.5
    raw_test = test.images.flatten(1).float().numpy() / 255 - 0.5
    svm = LinearSVC(C=1e-3).fit(raw_train, train.labels.numpy())
    linear = svm.score(raw_test, test.labels.numpy())
    f_train, f_test = _conv_features(train.images), _conv_features(test.images)
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    ridge = RidgeClassifier(alpha=1.0).fit(((f_train - mean) / std).numpy(), train.labels.numpy())
    conv = ridge.score(((f_test - mean) / std).numpy(), test.labels.numpy())
    print(f"synth_colour10 test accuracy: raw-pixel LinearSVC {linear:.3f}, "
          f"random-conv features {conv:.3f} (chance 0.100)")
    assert linear < 0.6
    assert conv > 0.7 and conv > linear + 0.3


def test_digits_look_like_classes():
    train = load_dataset("synth_digits", "train", max_images=2000)
    test = load_dataset("synth_digits", "test", max_images=500)
    assert train.images.shape == (2000, 1, 28, 28) and train.classes == [str(d) for d in range(10)]
    assert train.images[:, :, 0].float().mean() < 5 and train.images.max() > 200  # ink on black
    x, t = train.images.flatten(1).float(), test.images.flatten(1).float()
    centroids = torch.stack([x[train.labels == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(t, centroids).argmin(1) == test.labels).float().mean().item()
    assert accuracy > 0.5  # a nearest-centroid model already separates most glyphs


def test_rooms_masks():
    data = load_dataset("synth_rooms", "train", max_images=1000)
    assert data.labels is None and set(data.masks) == {"bed", "window"}
    bed, window = data.masks["bed"], data.masks["window"]
    assert bed.shape == window.shape == (1000, 64, 64) and bed.dtype == window.dtype == torch.bool
    has_window = window.flatten(1).any(1).float().mean().item()
    assert 0.6 < has_window < 0.8  # some rooms have no window, so a window rate means something
    assert bed.flatten(1).any(1).all() and not (bed & window).any()
    grey = data.images.float().mean(1)
    assert grey[window].mean() > grey.mean()  # windows are the bright part of the wall


def test_dry_run_stand_in_is_deterministic():
    a = load_dataset("svhn", "extra", dry_run=True, max_images=16, seed=2)
    b = load_dataset("svhn", "extra", dry_run=True, max_images=16, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.source == "dry run: generated stand-in for svhn extra (seed 2)"
