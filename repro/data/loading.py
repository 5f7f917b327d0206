"""The data layer's entry point: `load_dataset(name, split, ...)` -> ImageSet.

- `max_images` takes a seeded uniform random subset of the split (file order kept; the same
  seed gives nested subsets as max_images grows). Generated sets instead generate only the
  first max_images images of the split, which is the same distribution.
- `dry_run=True` reads no files: it returns smooth random images of the dataset's real shape
  (random labels when the set is labelled), `real=False`, so a profile that needs data this
  machine lacks can still be exercised end to end. For the generated sets the dry run is the
  generated set itself (masks included), labelled as a dry run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from repro.data.base import DatasetSpec, ImageSet
from repro.errors import ReproError
from repro.registry import DATASETS

DRY_RUN_IMAGES = 256


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.get(name).spec


def load_dataset(name: str, split: str, *, root: str = "data", download: bool = True,
                 search: Sequence[str] = (), max_images: int | None = None, seed: int = 0,
                 dry_run: bool = False) -> ImageSet:
    dataset = DATASETS.get(name)
    spec: DatasetSpec = dataset.spec
    if split not in spec.splits:
        raise ReproError(f"dataset {name!r} has no split {split!r}; valid names: "
                         f"{', '.join(spec.splits)}")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images <= 0):
        raise ReproError(f"max_images must be a positive whole number or None (all images), "
                         f"got {max_images!r}")
    if isinstance(search, str):  # a lone path would otherwise be read as one folder per letter
        search = [search]
    if dry_run:
        n = max_images or DRY_RUN_IMAGES
        if spec.splits[split] > 0:  # 0 = size unknown (user-supplied folder)
            n = min(n, spec.splits[split])
        if not spec.real and hasattr(dataset, "generate"):
            data = dataset.generate(split, n, seed)
            return replace(data, source=f"dry run: generated stand-in for {name} {split} "
                                        f"(the generated set itself, seed {seed})")
        from repro.data.synthetic import stand_in

        return stand_in(spec, split, n, seed)
    data = dataset.load(split, root=str(root), download=download, search=[str(s) for s in search],
                        max_images=max_images, seed=seed)
    expected = (spec.channels, spec.image_size, spec.image_size)
    if tuple(data.images.shape[1:]) != expected:  # a registry entry broke its own spec
        raise ReproError(f"{name} {split}: loaded images of shape {tuple(data.images.shape[1:])}, "
                         f"spec says {expected}")
    if len(data) == 0:
        raise ReproError(f"{name} {split}: no images loaded from {data.source}")
    return data
