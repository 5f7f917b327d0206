"""Fault audit (issue 32), finding 1: a config error under DVC deleted outputs.

DVC removes a stage's outputs before it resolves the stage's profile params, so `profile:
nonsense` used to cost every output of the stage (`cache: false` ones for good) and show DVC's
"Parameters ... are missing" instead of the harness's message. The `check_config` stage
(repro/stages/check_config.py) runs first and stops the run with the harness's message.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro.errors import ReproError
from repro.scratch import _env, copy_pipeline
from repro.stages.check_config import check

from conftest import REPO

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]


def _sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)


def _outputs(repo: Path) -> list[Path]:
    """Every output path of every stage, as DVC resolves dvc.yaml."""
    from dvc.repo import Repo
    with Repo(str(repo)) as dvc:
        return sorted({Path(out.def_path) for stage in dvc.index.stages for out in stage.outs})


def _snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((repo / "results").rglob("*")) if p.is_file()} | {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((repo / "reports").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """The pipeline definition in a git + DVC repository, every stage output planted (one
    file per output, a file inside each folder output) and committed to DVC and git as if
    the pipeline had run (`dvc exp run` checks the committed outputs out first)."""
    repo = tmp_path_factory.mktemp("faults_config")
    copy_pipeline(REPO, repo)
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        assert _sh(cmd, repo).returncode == 0
    for out in _outputs(repo):
        path = repo / out
        if not path.suffix:  # a folder output
            path = path / "planted.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"planted {out}\n")
    (repo / "results" / "shipped").mkdir(exist_ok=True)  # a data dependency of some stages
    # the check's output is every stage's params file: DVC must be able to read it
    check_out = yaml.safe_load((repo / "params.yaml").read_text())["paths"]["config_check"]
    assert _sh([sys.executable, "-m", "repro.stages.check_config", "--out", check_out],
               repo).returncode == 0
    commit = _sh([sys.executable, "-m", "dvc", "commit", "-f", "-q"], repo)
    assert commit.returncode == 0, commit.stdout + commit.stderr
    assert _sh([*GIT, "add", "-A"], repo).returncode == 0
    assert _sh([*GIT, "commit", "-qm", "planted outputs"], repo).returncode == 0
    return repo


def _set(repo: Path, rel: str, edit) -> None:
    path = repo / rel
    path.write_text(yaml.safe_dump(edit(yaml.safe_load(path.read_text())), sort_keys=False))


def _reset(repo: Path) -> None:
    assert _sh(["git", "checkout", "-q", "--", "."], repo).returncode == 0


def _profile(name: str):
    return lambda params: {**params, "profile": name}


def _remove_table3(profile: dict) -> dict:
    """The profile leaves out a section that is no `foreach` item (so must be there)."""
    own = {k: v for k, v in profile.items() if k != "table3"}
    return {**own, "remove": [*profile.get("remove", []), "table3"]}


CASES = {  # name -> (file to edit, edit, command, the harness's message)
    "unknown profile, dvc repro": (
        "params.yaml", _profile("nonsense"), ["repro"],
        "unknown profile 'nonsense'; valid names: cpu, demo, paper, smoke"),
    "unknown profile, dvc exp run -S": (
        None, None, ["exp", "run", "-S", "profile=nonsense"],
        "unknown profile 'nonsense'; valid names: cpu, demo, paper, smoke"),
    # `-s` skips check_config (DVC's choice: no upstream stage runs): the stage reads its
    # params from the last check's output and stops at its own Stage.open; the stage's files
    # are `persist` and stay
    "unknown profile, dvc repro -s table3": (
        "params.yaml", _profile("nonsense"), ["repro", "-s", "table3"],
        "unknown profile 'nonsense'; valid names: cpu, demo, paper, smoke"),
    "missing section, dvc repro table3": (
        "experiments/demo.yaml", _remove_table3, ["repro", "table3"],
        "profile 'demo' has no section 'table3'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error_under_dvc_keeps_every_output(scratch, case):
    rel, edit, command, message = CASES[case]
    _reset(scratch)
    before = _snapshot(scratch)
    assert len(before) >= 30, "the scratch repository should hold every stage's outputs"
    if edit is not None:
        _set(scratch, rel, edit)
    proc = _sh([sys.executable, "-m", "dvc", *command], scratch)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "are missing from" not in proc.stdout + proc.stderr
    assert _snapshot(scratch) == before
    changed = _sh(["git", "status", "--porcelain"], scratch).stdout.split("\n")
    edited = {rel or "params.yaml"}
    assert [line for line in changed if line and line[3:] not in edited] == []


def _params(tmp_path: Path, profile: str, edit=None) -> Path:
    """params.yaml selecting `profile` beside a copy of experiments/ (`edit` applied to it)."""
    shutil.copytree(REPO / "experiments", tmp_path / "experiments")
    if edit is not None:
        _set(tmp_path, f"experiments/{profile}.yaml", edit)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "profile": profile}))
    return tmp_path / "params.yaml"


@pytest.mark.parametrize("profile", ["smoke", "demo", "paper", "cpu"])
def test_check_passes_every_shipped_profile(tmp_path, profile):
    resolved = check(_params(tmp_path, profile), REPO / "dvc.yaml")
    assert resolved["profile"] == profile and "table3" in resolved


def _typo_key(profile: dict) -> dict:
    table3 = dict(profile["table3"])
    table3["max_tset"] = table3.pop("max_test")
    return {**profile, "table3": table3}


def _typo_section(profile: dict) -> dict:
    return {**profile, "tabel3": profile["table3"]}


def _typo_model(profile: dict) -> dict:
    train = dict(profile["train"])
    train["mnist_cnd"] = train["mnist_cond"]
    return {**profile, "train": train}


@pytest.mark.parametrize("edit, message", [
    (_typo_key, "invalid config: smoke.table3.max_tset: Extra inputs are not permitted"),
    (_typo_section, "profile 'smoke' has sections no stage reads: tabel3 (a misspelt name?)"),
    (_typo_model, "profile 'smoke' has sections no stage reads: train.mnist_cnd"),
    (_remove_table3, "profile 'smoke' has no section 'table3'"),
])
def test_check_names_the_bad_key_or_section(tmp_path, edit, message):
    with pytest.raises(ReproError) as err:
        check(_params(tmp_path, "smoke", edit), REPO / "dvc.yaml")
    assert message in str(err.value)
