"""Shared fixtures: quiet progress bars, tiny generated data, the optional ../shared folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from repro.data.base import ImageSet

os.environ.setdefault("REPRO_PROGRESS", "0")
torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parents[1]
# A user's clone has no ../shared: tests that use it skip.
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (only present on the project's own machines)")
    return SHARED


def tiny_images(n: int, channels: int, size: int, n_classes: int = 10, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, n_classes, (n,), generator=g) if n_classes else None
    return ImageSet(images=images, labels=labels, name="tiny", split="train",
                    source=f"generated: uniform noise (seed {seed})", real=False)


@pytest.fixture
def tiny_mnist() -> ImageSet:
    return tiny_images(64, 1, 28)
