"""Room to travel: the device tool sends the working tree (tracked and untracked-not-ignored
files) plus the carried .whl/ to the lent GPU machine, 64 MiB at most. The tree plus the GPU
check's wheels must stay at most 56 MiB, leaving room for what lands next."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

LIMIT = 56 * 2**20
SCRIPT = REPO / "tools" / "gpu_check.sh"


def travelling_files() -> list[Path]:
    """What the device tool sends: tracked files and untracked ones git does not ignore."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout ({err}): what travels is git's list")
    paths = {REPO / p for p in out.decode().split("\0") if p}
    return sorted(p for p in paths if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> list[Path]:
    """The lent machine's wheels (Python 3.12), fetched fresh; the checkout's own .whl/ when
    the package index cannot be reached."""
    whl = tmp_path_factory.mktemp("whl") / "whl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    prep = subprocess.run(["bash", str(SCRIPT), "prepare"], env={**env, "GPU_CHECK_WHL": str(whl)},
                          capture_output=True, text=True, timeout=600)
    if prep.returncode == 0:
        return sorted(whl.glob("*.whl"))
    if prep.returncode == 3 and list((REPO / ".whl").glob("*.whl")):
        return sorted((REPO / ".whl").glob("*.whl"))
    if prep.returncode == 3:
        pytest.skip(f"no package index and no .whl/ here: {prep.stderr[-300:]}")
    raise AssertionError(prep.stderr[-3000:])


def test_tree_plus_wheels_fits_the_transfer_with_room(wheels):
    files = travelling_files()
    tree = sum(p.stat().st_size for p in files)
    total = tree + sum(p.stat().st_size for p in wheels)
    biggest = sorted(files, key=lambda p: p.stat().st_size)[-5:]
    assert total <= LIMIT, (
        f"working tree {tree / 2**20:.1f} MiB + {len(wheels)} wheels = {total / 2**20:.1f} MiB, over "
        f"{LIMIT / 2**20:.0f} MiB; biggest: "
        + ", ".join(f"{p.relative_to(REPO)} ({p.stat().st_size / 2**20:.1f} MiB)" for p in biggest))
    assert len(wheels) == len([l for l in (REPO / "tools/gpu_check_wheels.txt").read_text().splitlines()
                               if l.strip() and not l.startswith("#")])


def test_the_size_check_counts_what_travels(tmp_path):
    """Control: a file git would send counts, an ignored one does not."""
    files = set(travelling_files())
    assert REPO / "README.md" in files and REPO / "tools" / "gpu_check.sh" in files
    assert not [p for p in files if ".whl" in p.relative_to(REPO).parts or ".venv" in p.parts]
