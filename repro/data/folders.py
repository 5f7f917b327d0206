"""Readers for user-supplied data: image folders, LSUN lmdb exports, Imagenet32 batches.

Plus the one rule every real dataset uses to take `max_images` of a split: a seeded uniform
random subset, kept in file order (`subset_indices`). The first k of one permutation are taken,
so with the same seed a smaller subset is contained in a larger one.
"""

from __future__ import annotations

import io
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from repro.data.base import DatasetSpec, ImageSet
from repro.errors import ReproError
from repro.utils.progress import progress
from repro.utils.safe_pickle import load_arrays

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def subset_indices(n: int, max_images: int | None, seed: int) -> torch.Tensor | None:
    """Indices of a seeded random subset of size max_images (sorted), or None for all n."""
    if max_images is None or max_images >= n:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:max_images].sort().values


def finish(spec: DatasetSpec, split: str, images: torch.Tensor, labels: torch.Tensor | None,
           source: str, max_images: int | None, seed: int,
           classes: list[str] | None = None) -> ImageSet:
    """Wrap a loaded split, taking the seeded random subset when max_images asks for one."""
    index = subset_indices(len(images), max_images, seed)
    if index is not None:
        images = images[index]
        labels = None if labels is None else labels[index]
        source += f"; seeded random subset of {len(index)} (seed {seed})"
    return ImageSet(images=images.contiguous(), labels=labels, name=spec.name, split=split,
                    source=source, real=True, classes=classes)


def download_failed(what: str, err: Exception, where: str) -> ReproError:
    detail = " ".join(str(err).split())[:400]  # one line, however torchvision formats it
    return ReproError(f"could not get {what} ({type(err).__name__}: {detail}); "
                      f"{where}")


def check_memory(n: int, channels: int, size: int, what: str) -> None:
    """Refuse to decode a set that cannot fit in RAM, before spending hours on it."""
    need = n * channels * size * size
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.7 * total:
        raise ReproError(
            f"{what}: {n} images of {channels}x{size}x{size} need {need / 2**30:.1f} GiB in memory, "
            f"more than this machine's {total / 2**30:.1f} GiB allows; pass max_images "
            f"(data.max_images in params.yaml), e.g. {int(0.3 * total) // (channels * size * size)}")


def list_images(folder: Path) -> list[Path]:
    """Every image file under `folder`, at any depth, in a fixed (sorted) order."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def list_class_folder(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """`folder/<class>/**/image` -> (paths, labels, class names); classes in sorted order."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        found = list_images(folder / name)
        paths += found
        labels += [label] * len(found)
    return paths, labels, classes


# Modes holding more than 8 bits per channel: PIL's convert("RGB") clips them (a 16-bit PNG
# comes out white), and the protocol's images are 8-bit, so they are refused by name.
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _to_square(img, size: int, pre_crop: int | None, where: str):
    from PIL import Image

    if img.mode in _DEEP_MODES:
        raise ReproError(f"image {where} has more than 8 bits per channel (PIL mode {img.mode}); "
                         "the protocol's images are 8-bit: convert it to 8-bit RGB (e.g. "
                         "`convert in.png -depth 8 out.png`) or remove it")
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    if pre_crop is not None:  # a fixed centre crop first (CelebA's 108x108 face region)
        side = min(pre_crop, w, h)
    else:  # min-side resize + centre crop == centre square crop, then resize
        side = min(w, h)
    if side < size:  # upscaling would invent the detail the protocol's images have
        raise ReproError(f"image {where} is {w}x{h}, smaller than the protocol's {size}x{size} "
                         f"crop; supply images at least {size} pixels on the short side, or "
                         "remove it")
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(img, dtype=np.uint8)  # a writable copy, so torch.from_numpy is safe


def decode_image(data: bytes | Path, size: int, pre_crop: int | None = None) -> np.ndarray:
    """One encoded image (path or bytes) -> (size, size, 3) uint8, centre-cropped square."""
    from PIL import Image, UnidentifiedImageError

    where = "an lmdb record" if isinstance(data, bytes) else str(data)
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            if pre_crop is None and img.format == "JPEG":
                img.draft("RGB", (size, size))  # DCT-domain downscale: much faster decoding
            return _to_square(img, size, pre_crop, where)
    except Image.DecompressionBombError as err:
        raise ReproError(f"image {where} is too large to decode safely ({err}); no photo the "
                         "protocol needs is that big: shrink it or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ReproError(f"cannot decode image {where}: {err}; remove or replace it") from None


def decode_many(items: Sequence[bytes | Path], size: int, *, pre_crop: int | None = None,
                desc: str = "decoding") -> torch.Tensor:
    """Decode images in parallel (PIL releases the GIL) -> (N, 3, size, size) uint8."""
    check_memory(len(items), 3, size, desc)
    out = torch.empty((len(items), 3, size, size), dtype=torch.uint8)
    workers = min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda item: decode_image(item, size, pre_crop), items, chunksize=64)
        for i, array in enumerate(progress(results, total=len(items), desc=desc, unit="img")):
            out[i] = torch.from_numpy(array).permute(2, 0, 1)
    return out


def is_lmdb(folder: Path) -> bool:
    return (folder / "data.mdb").is_file()


def read_lmdb(folder: Path, size: int, max_images: int | None, seed: int,
              what: str) -> tuple[torch.Tensor, int]:
    """An LSUN-style lmdb export (key -> encoded image bytes) -> (images, total records)."""
    try:
        import lmdb
    except ImportError:
        raise ReproError(
            f"{what}: {folder} is an lmdb database but the `lmdb` module is not installed; "
            "`pip install lmdb`, or export the images to a folder (LSUN's own export script "
            "does this) and point data.search at it") from None
    env = lmdb.open(str(folder), readonly=True, lock=False, readahead=False, meminit=False)
    try:
        with env.begin(write=False) as txn:
            keys = [bytes(k) for k in txn.cursor().iternext(keys=True, values=False)]
            if not keys:
                raise ReproError(f"{what}: the lmdb database {folder} is empty")
            index = subset_indices(len(keys), max_images, seed)
            chosen = keys if index is None else [keys[i] for i in index.tolist()]
            check_memory(len(chosen), 3, size, what)
            values = [bytes(txn.get(k)) for k in chosen]
    finally:
        env.close()
    return decode_many(values, size, desc=f"{what}: decoding"), len(keys)


# ---------------------------------------------------------------- Imagenet32 pickled batches

def _load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data, labels = z["data"], z["labels"]
        else:
            # The official Imagenet32 batches are Python pickles: read with an allow-list of
            # numpy globals, so a file carrying other objects is refused, never run.
            batch = load_arrays(path)
            data, labels = batch["data"], batch["labels"]
    except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError, TypeError) as err:
        raise ReproError(f"{path}: not a readable Imagenet32 batch ({type(err).__name__}: {err}); "
                         "expected a dict with 'data' (N, 3072) uint8 and 'labels' 1..1000") from None
    data, labels = np.asarray(data), np.asarray(labels, dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ReproError(f"{path}: 'data' must be (N, 3072) uint8 with N labels; found "
                         f"{data.dtype} {data.shape} and {len(labels)} labels")
    if labels.min() < 1 or labels.max() > 1000:
        raise ReproError(f"{path}: labels must be 1..1000 (the official numbering)")
    return data, labels - 1


def read_imagenet32_batches(paths: Iterable[Path], max_images: int | None,
                            seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Batches -> ((n, 3, 32, 32) uint8, (n,) int64 in 0..999, total images).

    With max_images, a seeded uniform random subset is kept while streaming (each image gets a
    random key; the smallest keys win), so only one ~390 MB batch is in memory at a time.
    """
    g = torch.Generator().manual_seed(seed)
    keys_parts: list[torch.Tensor] = []
    x_parts: list[torch.Tensor] = []
    y_parts: list[torch.Tensor] = []
    total = 0
    for path in progress(list(paths), desc="imagenet32 batches", unit="file"):
        data, labels = _load_batch(path)
        total += len(data)
        keys_parts.append(torch.rand(len(data), generator=g))
        x_parts.append(torch.from_numpy(data))
        y_parts.append(torch.from_numpy(labels))
        if max_images is not None and sum(len(k) for k in keys_parts) > max_images:
            keys = torch.cat(keys_parts)
            top = keys.topk(max_images, largest=False).indices.sort().values
            keys_parts, x_parts, y_parts = [keys[top]], [torch.cat(x_parts)[top]], [torch.cat(y_parts)[top]]
    keep_x, keep_y = torch.cat(x_parts), torch.cat(y_parts)
    # rows are channel planes: R (1024), G (1024), B (1024), each 32x32 row-major
    return keep_x.view(-1, 3, 32, 32).contiguous(), keep_y, total
