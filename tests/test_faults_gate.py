"""Fault audit (issue 32), finding 5: the drift gate's advice was a dead end.

A missing baseline pointed at `repro.report.drift --update`, whose baseline the gate then
refused; a truncated one said "rerun the stage that writes it" (none does); an edited value
made DRIFT blame the run; `--rederive` silently reset it. Every message now leads to `git
checkout` or `smoke_gate --update`, the one writer of baselines.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from repro.errors import ReproError
from repro.report import drift, smoke_gate

from conftest import REPO

UPDATE = "python -m repro.report.smoke_gate --update"
BASELINE = Path("results/baselines/smoke.json")


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """params.yaml, the profiles and the committed baseline; the working directory."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "experiments", tmp_path / "experiments")
    (tmp_path / BASELINE).parent.mkdir(parents=True)
    shutil.copy(REPO / BASELINE, tmp_path / BASELINE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _gate(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        smoke_gate.main(list(argv))
    return exit_.value.code


def _edit(repo: Path, edit) -> None:
    data = json.loads((repo / BASELINE).read_text())
    edit(data)
    (repo / BASELINE).write_text(json.dumps(data))


def test_committed_baseline_is_read_back(repo):
    """Control: the baseline as smoke_gate wrote it passes every check below."""
    assert len(smoke_gate.load_baseline(repo)["cells"]) > 30


def test_missing_baseline_names_smoke_gate_update(repo, capsys):
    (repo / BASELINE).unlink()
    assert _gate() == 2  # before any pipeline run
    err = capsys.readouterr().err
    assert f"baseline {BASELINE} not found" in err and UPDATE in err
    assert f"git checkout -- {BASELINE}" in err and "drift --update" not in err


def test_truncated_baseline_names_smoke_gate_update(repo, capsys):
    (repo / BASELINE).write_text((repo / BASELINE).read_text()[:500])
    assert _gate() == 2
    err = capsys.readouterr().err
    assert "is damaged (not valid JSON" in err and UPDATE in err
    assert "rerun the stage" not in err


def test_drift_update_is_refused_and_names_smoke_gate_update(repo, capsys):
    metrics = repo / "metrics"
    shutil.copytree(REPO / "results" / "metrics", metrics)
    with pytest.raises(SystemExit) as exit_:
        drift.main(["--update", "--baseline", str(repo / "new.json"), "--metrics", str(metrics)])
    assert exit_.value.code == 2 and not (repo / "new.json").exists()
    err = capsys.readouterr().err
    assert "--update cannot write a baseline from one metrics folder" in err and UPDATE in err


def _first(data: dict) -> str:
    return sorted(data["cells"])[0]


@pytest.mark.parametrize("field, message", [
    ("value", "holds value 99.0, its seed-0 run is"),
    ("tol", "holds std"),
])
def test_edited_baseline_is_named_not_blamed_on_the_run(repo, capsys, field, message):
    _edit(repo, lambda d: d["cells"][_first(d)].update({field: 99.0}))
    for argv in ((), ("--rederive",)):  # the check, and --rederive, which used to reset it
        assert _gate(*argv) == 2
        err = capsys.readouterr().err
        assert f"baseline {BASELINE} was edited by hand" in err and message in err, err
        assert UPDATE in err and f"git checkout -- {BASELINE}" in err


def test_rederive_prints_what_it_changed(repo, capsys):
    runs = {0: {"t/a": 10.0, "t/n": 3.0}, 1: {"t/a": 11.0, "t/n": 3.0}, 2: {"t/a": 9.0, "t/n": 3.0}}
    old = drift.seeded_baseline(runs, 0, 2.0, 1e-6, "an older rule: tol = 2 s", {"cpu_model": "x"},
                                "p0", UPDATE, count_cells=frozenset({"t/n"}), count_floor=1.0)
    old.update(units={"t/a": "%", "t/n": "steps"}, unsharp={}, verdicts={})
    (repo / BASELINE).write_text(json.dumps(old))
    assert smoke_gate.rederive(repo) == 0
    out = capsys.readouterr().out
    assert "change(s) to the baseline:" in out
    assert "t/a: tol 2.0 -> 4.0" in out  # k 2 -> 4 over runs 10, 11, 9 (s = 1)
    assert "rule: 'an older rule: tol = 2 s' -> " in out
    assert "t/n" not in out  # a count at its floor: unchanged, not listed
    assert smoke_gate.rederive(repo) == 0
    assert "0 change(s) to the baseline" in capsys.readouterr().out
