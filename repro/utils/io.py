"""Atomic output: a file is either complete or absent, never half-written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from repro.errors import ReproError
from repro.utils.finite import nonfinite

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


# Temporary files are `.<target name>.<8 mkstemp characters>.tmp` (.dvcignore hides them).
_TMP = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp")


def _lock(fd: int) -> bool:
    """Take a non-blocking exclusive lock on `fd`; False if another process holds one. The
    kernel drops the lock when its holder dies (kill -9 included), so a temp file whose lock
    can be taken has no live writer."""
    if fcntl is None:  # no flock (Windows): every earlier temp counts as stale
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files an interrupted writer of `path` left beside it; a temp file whose
    writer is still running (it holds the lock) is kept. -> the removed paths."""
    path = Path(path)
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir()
                      if (m := _TMP.fullmatch(p.name)) and m["name"] == path.name]
    except OSError:
        return removed
    for stale in candidates:
        try:
            fd = os.open(stale, os.O_RDONLY)
        except OSError:
            continue  # gone already
        try:
            if _lock(fd):
                stale.unlink(missing_ok=True)
                removed.append(stale)
        finally:
            os.close(fd)
    return removed


def _new_file_mode() -> int:
    """The mode a new file gets under the process's umask (which can only be read by setting
    it: it is set back at once, to a value no wider than the common 022 meanwhile)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    A writer killed outright (kill -9, power loss) cannot remove its temp file, so the next
    writer of the same target removes it first; the lock each writer holds on its temp file
    tells a dead writer's file from a running one's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp_path = Path(tmp)
    try:
        # mkstemp makes the file 0600 whatever the umask, and the rename keeps that mode: give
        # it the one open() would have given the target
        os.chmod(tmp_path, _new_file_mode())
        _lock(fd)  # held until the file is renamed or removed
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
        os.close(fd)


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, read in chunks (checkpoints run to hundreds of MiB)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# The finished rows of an interrupted table stage (repro.protocols.rows) lie beside its metrics
# file under this suffix; readers of a metrics folder skip them.
PARTIAL_SUFFIX = ".partial.json"


# Each metrics file is a pair: `<name>.json`, the numbers only (one flat key per cell, what
# dvc.yaml declares as metrics, so `dvc metrics show/diff` print a screenful), and its sibling
# `<name>.cells.json`, every other field of each cell (schema: docs/CONVENTIONS.md) plus who
# wrote it. Read them back together with `read_metrics_pair`.
CELLS_SUFFIX = ".cells.json"


def cells_path(path: str | Path) -> Path:
    """The sibling metadata file of the metrics (numbers) file `path`."""
    path = Path(path)
    return path.with_name(path.stem + CELLS_SUFFIX)


def is_numbers_file(path: Path) -> bool:
    """True for a metrics folder's numbers files (not siblings, not an interrupted stage's rows)."""
    return (path.suffix == ".json" and not path.name.endswith(CELLS_SUFFIX)
            and not path.name.endswith(PARTIAL_SUFFIX))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _content_digest(numbers_text: str, sibling: dict[str, Any]) -> str:
    """The digest of everything the report reads of a metrics pair: the numbers, every field of
    every cell, and who wrote them (the sibling's own digests aside)."""
    body = {k: v for k, v in sibling.items() if not k.endswith("_sha256")}
    return _digest(numbers_text + json.dumps(body, sort_keys=True, allow_nan=False))


def write_metrics(path: str | Path, metrics: dict[str, dict[str, Any]],
                  written_by: dict[str, Any] | None = None) -> None:
    """A metrics file pair (cell id -> cell, docs/CONVENTIONS.md): `path` gets the numbers,
    `cells_path(path)` the rest of each cell and `written_by` (stage, git revision, params
    hash: what the report checks against the stage's provenance). A NaN or inf anywhere in a
    cell is refused, naming the cell, and nothing is written: a failed measurement must not pass
    for a number. (`value: null` stays valid: a cell that was not run; it has no number.)"""
    for cell_id, cell in metrics.items():
        bad = nonfinite(cell)
        if bad:
            raise ReproError(f"metrics cell {cell_id!r} holds a non-finite number "
                             f"({'; '.join(bad)}); {path} was not written: find why the "
                             "measurement failed (diverged training, empty sample) and rerun")
    numbers = json.dumps({cid: cell["value"] for cid, cell in metrics.items()
                          if cell.get("value") is not None},
                         indent=2, sort_keys=True, allow_nan=False) + "\n"
    sibling = {"numbers_file": Path(path).name, "numbers_sha256": _digest(numbers),
               "written_by": written_by or {},
               "cells": {cid: {k: v for k, v in cell.items() if k != "value"}
                         for cid, cell in metrics.items()}}
    # default=str first: the digest is of what a reader will load back
    sibling["content_sha256"] = _content_digest(numbers, json.loads(json.dumps(sibling, default=str)))
    # the sibling first: a numbers file never exists without the metadata it was written with
    with atomic_path(cells_path(path)) as tmp:
        tmp.write_text(json.dumps(sibling, indent=2, sort_keys=True, default=str,
                                  allow_nan=False) + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text(numbers)


def read_metrics_pair(numbers_text: str, cells_text: str | None, where: str,
                      ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(cell id -> cell with its `value`, written_by) from a numbers file and its sibling.

    `cells_text` None: no sibling. Accepted only for a file of whole cells (the one-file format
    before the split, still found at older git revisions that `--compare` reads)."""
    numbers = _loads(numbers_text, where)
    if not isinstance(numbers, dict):
        raise ReproError(f"{where} must map cell ids to numbers, not a "
                         f"{type(numbers).__name__}; rerun the stage that writes it")
    if cells_text is None:
        if numbers and all(isinstance(v, dict) for v in numbers.values()):
            return numbers, {}
        raise ReproError(f"{where} has no sibling {Path(where).stem + CELLS_SUFFIX} (the cells' "
                         "metadata); the two are written together: rerun the stage that writes them")
    sibling_where = str(cells_path(where))
    doc = _loads(cells_text, sibling_where)
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), dict):
        raise ReproError(f"{sibling_where} must hold {{'cells': {{id: cell}}, ...}}; rerun the "
                         "stage that writes it")
    if doc.get("numbers_sha256") != _digest(numbers_text):
        raise ReproError(f"{where} and {sibling_where} do not belong together (the numbers "
                         "changed after the metadata was written); rerun the stage that writes them")
    # absent in pairs written before it existed (older revisions --compare reads)
    if "content_sha256" in doc and doc["content_sha256"] != _content_digest(numbers_text, doc):
        raise ReproError(f"{where} and {sibling_where} were edited after the stage wrote them "
                         "(their content_sha256 does not match what they hold); rerun the stage "
                         "that writes them")
    extra = sorted(set(numbers) - set(doc["cells"]))
    if extra:
        raise ReproError(f"{where}: cells {extra} have no metadata in {sibling_where}")
    cells = {cid: {**cell, "value": numbers.get(cid)} if isinstance(cell, dict) else cell
             for cid, cell in doc["cells"].items()}
    return cells, doc.get("written_by") or {}


def read_metrics_file(path: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(cells, written_by) of the metrics file `path` and its sibling (see read_metrics_pair)."""
    path = Path(path)
    sibling = cells_path(path)
    return read_metrics_pair(path.read_text(), sibling.read_text() if sibling.is_file() else None,
                             str(path))


def read_cells(path: str | Path) -> dict[str, dict[str, Any]]:
    """cell id -> cell (with `value`) of the metrics file `path`: what a stage wrote."""
    return read_metrics_file(path)[0]


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReproError(f"{where} is not valid JSON ({err}); rerun the stage that writes it") from None


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def torch_save(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_figure(fig, path: str | Path, **kwargs) -> None:
    """Save a matplotlib figure atomically (format from the suffix of `path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
