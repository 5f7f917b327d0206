"""Reading idx files (the MNIST / Fashion-MNIST format) with checks that refuse bad data.

An idx file is a 4-byte magic (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values. A truncated download or a wrong file must
stop the run with a clear message, never reach training as garbage, so every read checks the
magic, that the byte count equals the header's shape and (for .gz) the gzip trailer's CRC.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from repro.errors import ReproError

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


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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


def read_idx(path: str | Path, md5: str | None = None) -> np.ndarray:
    """Read one idx file (.gz or plain). With `md5`, the file's checksum must match it."""
    path = Path(path)
    if md5 is not None:
        actual = md5_file(path)
        if actual != md5:
            raise ReproError(
                f"{path}: MD5 checksum mismatch (got {actual}, expected {md5}); the file is "
                "truncated, corrupt or not the official release. Delete it and download it again.")
    return parse_idx(_read_bytes(path), str(path))


def find_file(names: Sequence[str], folders: Sequence[str | Path]) -> Path | None:
    """First existing `folder/name`, folders in order, names in order within each folder."""
    for folder in folders:
        for name in names:
            candidate = Path(folder).expanduser() / name
            if candidate.is_file():
                return candidate
    return None


def read_idx_pair(images_path: Path, labels_path: Path, *, md5s: dict[str, str],
                  count: int, n_classes: int, size: int = 28,
                  trusted_recompressed: bool = False) -> tuple[torch.Tensor, torch.Tensor, str]:
    """One images/labels idx pair -> ((N, 1, size, size) uint8, (N,) int64, how it was checked).

    A .gz whose name has a pinned MD5 (`md5s`, taken from torchvision) must match it. Plain
    (decompressed) files have no pinned checksum; they, and re-compressed copies we know of
    (`trusted_recompressed`: Debian re-gzips Fashion-MNIST, so its bytes differ from the
    upstream .gz while the content is the same), are checked by structure: idx header, exact
    image count and shape, label range, and gzip's own CRC32.
    """
    checks = []
    arrays = []
    for path in (images_path, labels_path):
        pinned = md5s.get(path.name) if path.suffix == ".gz" and not trusted_recompressed else None
        arrays.append(read_idx(path, pinned))
        checks.append("md5-verified" if pinned else "structure-checked")
    images, labels = arrays
    if images.dtype != np.uint8 or images.shape != (count, size, size):
        raise ReproError(f"{images_path}: expected {count} uint8 images of {size}x{size}, found "
                         f"{images.dtype} array of shape {images.shape}; wrong or corrupt file")
    if labels.shape != (count,):
        raise ReproError(f"{labels_path}: expected {count} labels, found shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ReproError(f"{labels_path}: labels outside 0..{n_classes - 1}; wrong or corrupt file")
    how = "md5-verified" if set(checks) == {"md5-verified"} else (
        "structure-checked: idx header, sizes, label range" +
        ("; Debian's re-gzipped copy, whose bytes differ from the pinned upstream MD5"
         if trusted_recompressed else "; no pinned MD5 for uncompressed files"))
    return (torch.from_numpy(images).unsqueeze(1).contiguous(),
            torch.from_numpy(labels.astype(np.int64)), how)
