"""Where a result came from: git revision, dirty flag, library versions."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path


# Pipeline outputs, as git pathspecs: writing them must not mark the code dirty.
OUTPUTS = (":!results", ":!reports", ":!dvc.lock")


def git_output(*args: str, cwd: Path | None = None, timeout: float = 10) -> bytes | None:
    """`git args` run in `cwd` -> its stdout; None where git is missing, fails or hangs."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _git(*args: str) -> str | None:
    out = git_output(*args)
    return out.decode().strip() if out is not None else None


@lru_cache(maxsize=1)
def git_revision() -> dict[str, object]:
    rev = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", ".", *OUTPUTS)
    return {"revision": rev or "unknown", "dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "numpy", "scikit-learn", "scipy", "dvc", "dcgan-repro"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions
