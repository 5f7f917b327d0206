"""Atomic output: a file is either complete or absent, never half-written."""

from __future__ import annotations

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
        _lock(fd)  # held until the file is renamed or removed
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
        os.close(fd)


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# The finished rows of an interrupted table stage (repro.stages.rows) lie beside its metrics
# file under this suffix; readers of a metrics folder skip them.
PARTIAL_SUFFIX = ".partial.json"


def write_metrics(path: str | Path, metrics: dict[str, dict[str, Any]]) -> None:
    """A metrics file (cell id -> cell, docs/CONVENTIONS.md). A NaN or inf anywhere in a cell
    is refused, naming the cell, and nothing is written: a failed measurement must not pass
    for a number. (`value: null` stays valid: a cell that was not run.)"""
    for cell_id, cell in metrics.items():
        bad = nonfinite(cell)
        if bad:
            raise ReproError(f"metrics cell {cell_id!r} holds a non-finite number "
                             f"({'; '.join(bad)}); {path} was not written: find why the "
                             "measurement failed (diverged training, empty sample) and rerun")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str,
                                  allow_nan=False) + "\n")


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
