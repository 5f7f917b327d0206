"""Datasets the user supplies (or torchvision fetches from Google Drive): Imagenet32, LSUN
bedrooms, CelebA, a faces folder. Imported by `repro.data.real`, which registers them.

Where files are looked for: a named subfolder of each `search` folder, then of `root` (the
`data.root` key in params.yaml). Only named subfolders are looked in, never a search folder's
other contents, so one search path can serve every dataset without mixing their images.
- imagenet32: `<folder>/imagenet32/` (or `<folder>/` itself) holding the official pickled
  batches `train_data_batch_1..10` and `val_data` (or their .npz versions), directly or in
  `Imagenet32_train[_npz]/`, `Imagenet32_val[_npz]/`; or class folders
  `<folder>/imagenet32/train/<class>/*.jpg` and `.../val/<class>/*.jpg`, min-side resized and
  centre-cropped to 32x32. No download: ImageNet's licence requires registration.
- lsun_bedroom: `<folder>/lsun_bedroom/` as an image folder (any depth; .jpg/.png/.webp) or an
  lmdb export; or `<folder>/bedroom_train_lmdb/` (LSUN's own download). Min-side resize +
  centre crop to 64x64. Memory: N x 12 KB (the 3,033,042 images need ~37 GB), so pass
  `max_images`.
- celeba: torchvision's CelebA layout `<folder>/celeba/img_align_celeba/*.jpg` plus its txt
  files (torchvision downloads them from Google Drive and checks the txt files' MD5s; the
  Drive quota often refuses, then the error says what to fetch by hand). Images: the usual
  DCGAN recipe, centre 108x108 crop of the aligned 178x218 image, resized to 64x64. The 40
  binary attributes come from `load_celeba_attributes` (ImageSet labels stay None).
- faces: `<folder>/faces/` image folder, 64x64. The paper's own faces set (3M web images of
  10K people) was never released; celeba is the usual stand-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from repro.data.base import DatasetSpec, ImageSet
from repro.data.folders import (IMAGE_SUFFIXES, decode_many, download_failed, is_lmdb,
                                list_class_folder, list_images, read_imagenet32_batches,
                                read_lmdb, subset_indices)
from repro.data.idx import MissingData, find_file
from repro.registry import DATASETS
from repro.utils.fetch import retrying


def _folders(root: str, search: Sequence[str]) -> list[Path]:
    return [Path(f).expanduser() for f in (*map(str, search), root)]


def _subset_note(n: int, total: int, seed: int) -> str:
    return "" if n == total else f"; seeded random subset of {n} (seed {seed})"


def _from_image_folder(spec: DatasetSpec, split: str, folder: Path, paths: list[Path], size: int,
                       max_images: int | None, seed: int, what: str,
                       pre_crop: int | None = None) -> ImageSet:
    index = subset_indices(len(paths), max_images, seed)
    chosen = paths if index is None else [paths[i] for i in index.tolist()]
    images = decode_many(chosen, size, pre_crop=pre_crop, desc=f"{spec.name}: decoding")
    return ImageSet(images=images, labels=None, name=spec.name, split=split, real=True,
                    source=f"{what} from {folder} ({len(paths)} images){_subset_note(len(chosen), len(paths), seed)}")


# ---------------------------------------------------------------- Imagenet32

class Imagenet32:
    spec = DatasetSpec("imagenet32", 32, 3, 1000, {"train": 1281167, "valid": 50000}, real=True,
                       description="Imagenet-1k downsampled to 32x32 (paper Table 1 pretraining)")
    batches = {"train": [f"train_data_batch_{i}" for i in range(1, 11)], "valid": ["val_data"]}
    subdirs = {"train": ["", "Imagenet32_train", "Imagenet32_train_npz"],
               "valid": ["", "Imagenet32_val", "Imagenet32_val_npz"]}
    class_dirs = {"train": "train", "valid": "val"}

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        names = self.batches[split]
        looked = []
        for base in _folders(root, search):
            for home in (base / "imagenet32", base):
                for sub in self.subdirs[split]:
                    folder = home / sub
                    looked.append(str(folder))
                    files = [find_file([n, f"{n}.npz", f"{n}.pkl"], [folder]) for n in names]
                    if not any(files):
                        continue
                    if not all(files):
                        missing = [n for n, f in zip(names, files) if f is None]
                        raise MissingData(f"imagenet32 {split}: {folder} lacks {', '.join(missing)}; "
                                          "a partial set would bias the classes, so add them")
                    images, labels, total = read_imagenet32_batches(files, max_images, seed)
                    source = (f"real Imagenet32 {split} (official batches in {folder}, {total} "
                              f"images){_subset_note(len(images), total, seed)}")
                    return ImageSet(images=images, labels=labels, name=self.spec.name,
                                    split=split, source=source, real=True)
            classes_at = base / "imagenet32" / self.class_dirs[split]
            looked.append(f"{classes_at}/<class>/")
            if classes_at.is_dir():
                paths, labels, classes = list_class_folder(classes_at)
                if paths:
                    index = subset_indices(len(paths), max_images, seed)
                    index = torch.arange(len(paths)) if index is None else index
                    images = decode_many([paths[i] for i in index.tolist()], 32,
                                         desc="imagenet32: decoding")
                    source = (f"real ImageNet {split} from class folders in {classes_at} "
                              f"({len(paths)} images, min-side resized + centre-cropped to 32x32)"
                              f"{_subset_note(len(index), len(paths), seed)}")
                    return ImageSet(images=images, labels=torch.tensor(labels)[index],
                                    name=self.spec.name, split=split, source=source, real=True,
                                    classes=classes)
        raise MissingData(
            f"imagenet32 {split} not found (it cannot be downloaded automatically: ImageNet needs "
            f"registration at https://image-net.org, 'Downsampled ImageNet 32x32'). Put "
            f"{', '.join(names[:2])}{'...' if len(names) > 2 else ''} (pickled or .npz) in "
            f"{Path(root) / 'imagenet32'}, or class folders in "
            f"{Path(root) / 'imagenet32' / self.class_dirs[split]}/<class>/. Looked in: "
            + ", ".join(looked))


DATASETS.register("imagenet32")(Imagenet32())


# ---------------------------------------------------------------- image-folder sets

class FolderDataset:
    """A user-supplied set of unlabeled images (or an lmdb export of them), one split."""

    def __init__(self, spec: DatasetSpec, subfolders: Sequence[str], what: str, hint: str):
        self.spec, self.subfolders, self.what, self.hint = spec, tuple(subfolders), what, hint

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        size, looked = self.spec.image_size, []
        for base in _folders(root, search):
            for name in self.subfolders:
                folder = base / name
                looked.append(str(folder))
                if is_lmdb(folder):
                    images, total = read_lmdb(folder, size, max_images, seed, self.spec.name)
                    return ImageSet(images=images, labels=None, name=self.spec.name, split=split,
                                    real=True, source=f"{self.what} from lmdb {folder} ({total} records)"
                                    f"{_subset_note(len(images), total, seed)}")
                paths = list_images(folder) if folder.is_dir() else []
                if paths:
                    return _from_image_folder(self.spec, split, folder, paths, size, max_images,
                                              seed, f"{self.what}, min-side resized + centre-cropped "
                                              f"to {size}x{size},")
        raise MissingData(f"{self.spec.name} not found: {self.hint} Images: any depth, "
                          f"{'/'.join(IMAGE_SUFFIXES)}. Looked in: {', '.join(looked)}")


DATASETS.register("lsun_bedroom")(FolderDataset(
    DatasetSpec("lsun_bedroom", 64, 3, 0, {"train": 3033042}, real=True,
                description="LSUN bedrooms, user-supplied; pass max_images (N x 12 KB in memory)"),
    ["lsun_bedroom", "bedroom_train_lmdb", "lsun/bedroom_train_lmdb"], "real LSUN bedrooms",
    "it is not downloaded automatically. Get LSUN's bedroom_train_lmdb (https://github.com/"
    "fyu/lsun) and put it in <data.root>/ (reading lmdb needs `pip install lmdb`), or export "
    "the images into <data.root>/lsun_bedroom/ (or <search folder>/lsun_bedroom/)."))

# LSUN's 300 validation bedrooms: the held-out real images of the memorisation check (Figs. 2-3).
DATASETS.register("lsun_bedroom_val")(FolderDataset(
    DatasetSpec("lsun_bedroom_val", 64, 3, 0, {"test": 300}, real=True,
                description="LSUN bedroom validation images (300), user-supplied"),
    ["lsun_bedroom_val", "bedroom_val_lmdb", "lsun/bedroom_val_lmdb"], "real LSUN val bedrooms",
    "get LSUN's bedroom_val_lmdb (https://github.com/fyu/lsun) into <data.root>/, or export "
    "its images into <data.root>/lsun_bedroom_val/."))

DATASETS.register("faces")(FolderDataset(
    DatasetSpec("faces", 64, 3, 0, {"train": 0}, real=True,
                description="user-supplied face images (size 0 = depends on the folder); the "
                            "paper's own face set was never released"),
    ["faces"], "real face images",
    "put face images in <data.root>/faces/ (or <search folder>/faces/); celeba is a public "
    "alternative."))


# ---------------------------------------------------------------- CelebA

def _celeba(split: str, root: str, search: Sequence[str], download: bool):
    """torchvision's CelebA object for a split (reads the txt files, checks their MD5s)."""
    from torchvision.datasets import CelebA

    found = [f for f in map(str, search) if (Path(f) / CelebA.base_folder / "img_align_celeba").is_dir()]
    base = found[0] if found else root
    files = ", ".join(name for _, _, name in CelebA.file_list)
    home = Path(root) / CelebA.base_folder
    if download and not found:  # Google Drive via gdown: timeout, bounded retry, one message
        return retrying(lambda: CelebA(root, split=split, target_type="attr", download=True), "CelebA",
                        [(f"https://drive.google.com/uc?id={fid}", md5) for fid, md5, _ in CelebA.file_list],
                        home, [home / name for _, _, name in CelebA.file_list]
                        + [home / "img_align_celeba"]), home
    try:
        ds = CelebA(base, split=split, target_type="attr", download=False)
    except Exception as err:  # missing / corrupt files
        raise download_failed("CelebA", err, (
            f"download {files} from the CelebA site's Google Drive by hand into "
            f"{Path(root) / CelebA.base_folder} and unzip img_align_celeba.zip there")) from None
    return ds, Path(base) / CelebA.base_folder


class CelebAFaces:
    spec = DatasetSpec("celeba", 64, 3, 0, {"train": 162770, "valid": 19867, "test": 19962},
                       real=True, description="CelebA aligned faces, centre 108 crop -> 64x64")

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        ds, folder = _celeba(split, root, search, download)
        paths = [folder / "img_align_celeba" / name for name in ds.filename]
        return _from_image_folder(self.spec, split, folder, paths, 64, max_images, seed,
                                  f"real CelebA {split} (txt files md5-verified by torchvision), "
                                  "centre 108x108 crop resized to 64x64,", pre_crop=108)


DATASETS.register("celeba")(CelebAFaces())


def load_celeba_attributes(split: str, *, root: str = "data", search: Sequence[str] = (),
                           download: bool = False, max_images: int | None = None,
                           seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """CelebA's 40 binary attributes -> ((N, 40) int64 in {0, 1}, names), rows aligned with
    `load_dataset("celeba", split, ...)` called with the same root/search/max_images/seed."""
    ds, _ = _celeba(split, root, search, download)
    attributes = ds.attr.to(torch.int64)
    index = subset_indices(len(attributes), max_images, seed)
    return (attributes if index is None else attributes[index]), list(ds.attr_names)[:attributes.shape[1]]
