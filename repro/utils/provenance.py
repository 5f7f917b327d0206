"""Where a result came from: git revision, dirty flag, library versions."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@lru_cache(maxsize=1)
def git_revision() -> dict[str, object]:
    rev = _git("rev-parse", "HEAD")
    # results/ and reports/ are pipeline outputs: writing them must not mark the code dirty
    status = _git("status", "--porcelain", "--", ".", ":!results", ":!reports", ":!dvc.lock")
    return {"revision": rev or "unknown", "dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "numpy", "scikit-learn", "scipy", "dvc", "dcgan-repro"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions
