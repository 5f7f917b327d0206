"""Reading idx files (the MNIST / Fashion-MNIST format) with checks that refuse bad data.

An idx file is a 4-byte magic (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values. A truncated download or a wrong file must
stop the run with a clear message, never reach training as garbage, so every read checks the
magic, that the byte count equals the header's shape and (for .gz) the gzip trailer's CRC;
a dataset's files are then identified by the MD5 of their decompressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from repro.errors import ReproError
from repro.utils.io import file_digest

class MissingData(ReproError):
    """The data's files are not on disk (as opposed to present but corrupt)."""


# idx dtype code -> numpy dtype (big-endian, as the format stores it)
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def md5_file(path: str | Path) -> str:
    return file_digest(path, "md5")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            # gzip checks the trailer's CRC32 and length, so a cut or flipped file fails here
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ReproError(
            f"{path}: cannot read ({type(err).__name__}: {err}); the file is truncated or corrupt. "
            "Delete it and download it again.") from None


def parse_idx(data: bytes, name: str = "idx data") -> np.ndarray:
    """Bytes of one idx file -> numpy array of the header's shape (native byte order)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ReproError(f"{name}: not an idx file (bad magic {data[:4].hex() or 'empty'}); "
                         "expected e.g. train-images-idx3-ubyte(.gz) as published")
    dtype, ndim = _DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ReproError(f"{name}: idx header cut short ({len(data)} bytes); file is truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ReproError(
            f"{name}: idx header says shape {tuple(shape)} ({expected} bytes of data) but the file "
            f"holds {len(data) - header}; the file is truncated or corrupt. Download it again.")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx_content(path: str | Path) -> tuple[np.ndarray, str]:
    """One idx file (.gz or plain) -> (array, MD5 of its decompressed bytes): the content's
    identity, whatever compression carried it."""
    data = _read_bytes(Path(path))
    return parse_idx(data, str(path)), hashlib.md5(data).hexdigest()


def find_file(names: Sequence[str], folders: Sequence[str | Path]) -> Path | None:
    """First existing `folder/name`, folders in order, names in order within each folder."""
    for folder in folders:
        for name in names:
            candidate = Path(folder).expanduser() / name
            if candidate.is_file():
                return candidate
    return None


def read_idx_pair(images_path: Path, labels_path: Path, *, content_md5s: dict[str, str],
                  identify: Callable[[str], str | None], title: str, count: int, n_classes: int,
                  size: int = 28) -> tuple[torch.Tensor, torch.Tensor, str]:
    """One images/labels idx pair -> ((N, 1, size, size) uint8, (N,) int64, how it was checked).

    Files are identified by content: the MD5 of the decompressed idx bytes must equal the
    official one (`content_md5s`, by plain file name), so the same data gzipped another way
    (Debian re-gzips Fashion-MNIST) or not compressed at all is accepted, and another dataset
    under the same name (MNIST's files placed as Fashion-MNIST) is refused, named by
    `identify` (content MD5 -> what the file is, or None).
    """
    arrays = []
    for path in (images_path, labels_path):
        array, digest = read_idx_content(path)
        name = path.name.removesuffix(".gz")
        want = content_md5s.get(name)
        if digest != want:
            other = identify(digest)
            if other is not None:
                raise ReproError(
                    f"{path} is {other}, not {title}'s {name}: a wrong dataset under the right "
                    f"name. Remove it and put the official {title} file there.")
            raise ReproError(
                f"{path}: decompressed content has MD5 {digest}, but the official {title} {name} "
                f"has {want}; the file is corrupt, altered or not the official release. Delete "
                "it and download it again.")
        arrays.append(array)
    images, labels = arrays
    if images.dtype != np.uint8 or images.shape != (count, size, size):
        raise ReproError(f"{images_path}: expected {count} uint8 images of {size}x{size}, found "
                         f"{images.dtype} array of shape {images.shape}; wrong or corrupt file")
    if labels.shape != (count,):
        raise ReproError(f"{labels_path}: expected {count} labels, found shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ReproError(f"{labels_path}: labels outside 0..{n_classes - 1}; wrong or corrupt file")
    return (torch.from_numpy(images).unsqueeze(1).contiguous(),
            torch.from_numpy(labels.astype(np.int64)), "md5-verified")
