"""The metric-drift gate: clean -> 0, drift or missing cell -> 1, new cell -> warning; --update refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.errors import ReproError
from repro.report.drift import REGENERATE, main, read_baseline


def _cell(value):
    # fixture data in the metrics schema (docs/CONVENTIONS.md), not a measured result
    return {"value": value, "std": None, "n_runs": 1, "unit": "%", "compares_to": None,
            "comparable": False, "protocol": {"profile": "smoke"}, "deviations": []}


def _metrics(root: Path, cells: dict) -> Path:
    metrics = root / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "table3_mnist_nn.json").write_text(
        json.dumps({k: _cell(v) for k, v in cells.items()}))
    return metrics


CELLS = {"table3/dcgan/err@50k": 41.2, "table3/gan/err@50k": 63.0, "table3/real/err@50k": None}


def _gate(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    """A plain baseline (value and tol per cell, no seed runs): what `check` compares against.
    (The smoke gate's baselines are seeded ones, written by smoke_gate --update only.)"""
    path = tmp_path / "baselines" / "smoke.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"regenerate": REGENERATE, "cells": {
        f"table3_mnist_nn/{k}": {"value": v, "tol": 0.0} for k, v in CELLS.items()}}))
    return path


def test_no_drift(tmp_path: Path, baseline: Path, capsys):
    metrics = _metrics(tmp_path / "b", CELLS)
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics)) == 0
    assert "0 drifting, 0 missing, 0 new" in capsys.readouterr().out


def test_drift_beyond_tolerance(tmp_path: Path, baseline: Path, capsys):
    metrics = _metrics(tmp_path / "b", {**CELLS, "table3/dcgan/err@50k": 41.7})
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics)) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("DRIFT"))
    assert "table3_mnist_nn/table3/dcgan/err@50k" in line
    assert "41.2" in line and "41.7" in line and line.split()[-1] == "0.0"
    assert "regenerate the baseline" in out
    # a tolerance file that allows it
    tols = tmp_path / "tol.yaml"
    tols.write_text("'table3_mnist_nn/table3/dcgan/*': 0.6\n")
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics),
                 "--tolerance-file", str(tols)) == 0


def test_null_to_number_is_drift(tmp_path: Path, baseline: Path):
    metrics = _metrics(tmp_path / "b", {**CELLS, "table3/real/err@50k": 3.0})
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics)) == 1


def test_missing_cell_fails_and_new_cell_warns(tmp_path: Path, baseline: Path, capsys):
    cells = {k: v for k, v in CELLS.items() if k != "table3/gan/err@50k"}
    metrics = _metrics(tmp_path / "b", cells)
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics)) == 1
    assert any(l.startswith("MISSING") and "table3/gan/err@50k" in l
               for l in capsys.readouterr().out.splitlines())
    metrics = _metrics(tmp_path / "c", {**CELLS, "table3/raw/err@50k": 50.0})
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics)) == 0
    assert "NEW" in capsys.readouterr().out
    assert _gate("--baseline", str(baseline), "--metrics", str(metrics), "--strict") == 1


def test_bad_inputs(tmp_path: Path, baseline: Path, capsys):
    assert _gate("--baseline", str(tmp_path / "none.json"), "--metrics",
                 str(_metrics(tmp_path / "b", CELLS))) == 2
    assert "--update" in capsys.readouterr().err
    assert _gate("--baseline", str(baseline), "--metrics", str(tmp_path / "nowhere")) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": [1]}')
    with pytest.raises(ReproError, match="not a drift baseline"):
        read_baseline(bad)
