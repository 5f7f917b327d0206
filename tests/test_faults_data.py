"""Fault audit (issue 32), data side: downloads that cannot hang, datasets known by content,
images the protocol cannot use refused or converted by name."""

from __future__ import annotations

import gzip
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from repro.data.loading import load_dataset
from repro.errors import ReproError

MNIST_DIR = Path(__file__).resolve().parents[1] / "../shared/datasets/mnist"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def silent_server(monkeypatch):
    """A local server that accepts connections and never answers (a proxy that hangs)."""
    monkeypatch.setenv("REPRO_NET_TIMEOUT", "0.3")
    monkeypatch.setenv("REPRO_NET_TRIES", "2")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # the kernel completes the handshakes; nobody ever reads or replies
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"


def test_torchvision_download_times_out_with_one_clear_error(silent_server, tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", [silent_server])
    with pytest.raises(ReproError) as err:
        load_dataset("mnist", "test", root=str(tmp_path), download=True)
    message = str(err.value)
    raw = tmp_path / "MNIST" / "raw"
    assert "2 tries with a 0.3 s timeout" in message and str(raw) in message
    assert f"{silent_server}t10k-images-idx3-ubyte.gz (md5 9fb629c4189551a2d022fa330f9573f3)" in message
    assert not any(raw.glob("*")) if raw.is_dir() else True  # no half-written file is left


def test_cifar_and_svhn_downloads_time_out(silent_server, tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10, SVHN

    monkeypatch.setattr(CIFAR10, "url", silent_server + "cifar-10-python.tar.gz")
    with pytest.raises(ReproError, match=rf"could not download CIFAR-10.*{silent_server}cifar-10-"
                                         rf"python.tar.gz \(md5 {CIFAR10.tgz_md5}\) into {tmp_path}"):
        load_dataset("cifar10", "test", root=str(tmp_path), download=True)
    monkeypatch.setitem(SVHN.split_list, "test", [silent_server + "test_32x32.mat",
                                                  *SVHN.split_list["test"][1:]])
    with pytest.raises(ReproError, match=rf"could not download SVHN test.*test_32x32.mat \(md5 "
                                         rf"{SVHN.split_list['test'][2]}\) into {tmp_path / 'svhn'}"):
        load_dataset("svhn", "test", root=str(tmp_path), download=True)
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()


def test_celeba_download_failure_names_the_drive_files(silent_server, tmp_path):
    from torchvision.datasets import CelebA

    fid, md5, _ = CelebA.file_list[0]  # Google Drive through gdown (absent here, or unreachable)
    with pytest.raises(ReproError, match=rf"could not download CelebA: 2 tries.*https://drive.google"
                                         rf".com/uc\?id={fid} \(md5 {md5}\).* into {tmp_path / 'celeba'}"):
        load_dataset("celeba", "train", root=str(tmp_path), download=True)


def test_authors_checkpoint_fetch_times_out(silent_server, tmp_path):
    from repro.models import authors_svhn as A

    with pytest.raises(ReproError, match=rf"{silent_server}200_discrim_params.jl \(md5 "
                                         rf"{A.PINNED_MD5['200_discrim_params.jl']}\) into {tmp_path}"):
        A.fetch_authors_svhn(tmp_path, url_base=silent_server)
    assert not any(tmp_path.glob("*.part")) and not any(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("timeout, tries", [("0", "3"), ("soon", "3"), ("5", "-1")])
def test_bad_network_settings_are_named(monkeypatch, timeout, tries):
    from repro.utils.fetch import net_settings

    monkeypatch.setenv("REPRO_NET_TIMEOUT", timeout)
    monkeypatch.setenv("REPRO_NET_TRIES", tries)
    with pytest.raises(ReproError, match="REPRO_NET_TIMEOUT"):
        net_settings()


# ---------------------------------------------------------------- datasets known by content

def need(folder: Path) -> Path:
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{folder} not here")
    return folder


def test_debian_fashion_mnist_copied_into_the_data_root_is_accepted(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(need(DEBIAN_FASHION) / name, raw / name)  # re-gzipped: bytes differ upstream's
    data = load_dataset("fashion_mnist", "test", root=str(tmp_path), download=False)
    assert len(data) == 10000 and f"official idx files in {raw}, md5-verified" in data.source


def test_uncompressed_and_recompressed_official_files_are_accepted(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        content = gzip.decompress((need(MNIST_DIR) / f"{name}.gz").read_bytes())
        (tmp_path / "plain").mkdir(exist_ok=True)
        (tmp_path / "plain" / name).write_bytes(content)
        (tmp_path / "regz").mkdir(exist_ok=True)
        (tmp_path / "regz" / f"{name}.gz").write_bytes(gzip.compress(content, 9, mtime=1))
    for folder in ("plain", "regz"):
        data = load_dataset("mnist", "test", search=[str(tmp_path / folder)], download=False,
                            root="/nonexistent")
        assert data.labels[0].item() == 7 and "md5-verified" in data.source


def test_mnist_files_placed_as_fashion_mnist_are_refused(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # decompressed, as a user might
        (raw / name).write_bytes(gzip.decompress((need(MNIST_DIR) / f"{name}.gz").read_bytes()))
    with pytest.raises(ReproError, match=r"t10k-images-idx3-ubyte is MNIST's t10k-images-idx3-ubyte,"
                                         r" not Fashion-MNIST's .*wrong dataset"):
        load_dataset("fashion_mnist", "test", root=str(tmp_path), download=False)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # and as .gz
        (raw / name).unlink()
        shutil.copy(MNIST_DIR / f"{name}.gz", raw / f"{name}.gz")
    with pytest.raises(ReproError, match="is MNIST's t10k-images-idx3-ubyte, not Fashion-MNIST's"):
        load_dataset("fashion_mnist", "test", root=str(tmp_path), download=False)


def test_altered_content_is_refused_whatever_the_compression(tmp_path):
    content = bytearray(gzip.decompress((need(MNIST_DIR) / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    content[100] = (content[100] + 1) % 10  # one label changed: still a valid idx file
    shutil.copy(MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(ReproError, match="decompressed content has MD5 .* but the official MNIST "
                                         "t10k-labels-idx1-ubyte has 27ae3e4e"):
        load_dataset("mnist", "test", search=[str(tmp_path)], download=False, root="/nonexistent")


# ---------------------------------------------------------------- images the protocol cannot use

def save(path: Path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def test_image_below_the_protocol_size_is_refused_not_upscaled(tmp_path):
    from PIL import Image

    save(tmp_path / "faces" / "tiny.png", Image.new("RGB", (1, 1), (9, 9, 9)))
    with pytest.raises(ReproError, match=r"tiny.png is 1x1, smaller than the protocol's 64x64"):
        load_dataset("faces", "train", root=str(tmp_path))


def test_16_bit_png_is_refused_not_whitened(tmp_path):
    from PIL import Image

    deep = Image.fromarray(np.full((70, 70), 1000, np.uint16))  # mode I;16: mid-grey in 16 bits
    save(tmp_path / "faces" / "deep.png", deep)
    with pytest.raises(ReproError, match=r"deep.png has more than 8 bits per channel \(PIL mode "
                                         r"I;16\).*convert it to 8-bit"):
        load_dataset("faces", "train", root=str(tmp_path))


def test_absurdly_large_png_is_one_clear_error(tmp_path):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # ~50 KB on disk, 400 Mpixel
    with pytest.raises(ReproError, match=r"bomb.png is too large to decode safely .*shrink it"):
        load_dataset("faces", "train", root=str(tmp_path))
