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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke pipeline, run once per session: CI runs it for the drift gate first
    (`smoke_gate --keep DIR`) and passes REPRO_SMOKE_RUN=DIR, so it is not run twice."""
    from repro.report.smoke_gate import run_smoke

    given = os.environ.get("REPRO_SMOKE_RUN")
    if given and (Path(given) / "results" / "metrics").is_dir():
        return Path(given)
    dest = tmp_path_factory.mktemp("smoke") / "smoke"
    run_smoke(REPO, dest)
    return dest


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
