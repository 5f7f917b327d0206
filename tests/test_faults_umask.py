"""Fault audit (issue 32), from finding 6: every file the harness wrote was mode 0600 whatever
the umask (mkstemp's mode survived the rename into place, repro.utils.io.atomic_path)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from repro.utils.io import cells_path, torch_save, write_json, write_metrics


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_json(tmp_path / "a.json", {"x": 1})
    torch_save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    write_metrics(tmp_path / "m.json", {"t/r/c": {  # FIXTURE cell, not a measured result
        "value": 1.0, "runs": [1.0], "n_runs": 1, "comparable": False, "deviations": []}})
    for path in (tmp_path / "a.json", tmp_path / "w.pt", tmp_path / "m.json",
                 cells_path(tmp_path / "m.json")):
        assert _mode(path) == mode, f"{path.name}: {oct(_mode(path))}, umask {oct(mask)}"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_reading_the_umask_leaves_it_as_it_was(tmp_path, umask):
    umask(0o027)
    write_json(tmp_path / "a.json", {})
    assert os.umask(0o027) == 0o027
