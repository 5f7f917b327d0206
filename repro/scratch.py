"""Run the DVC pipeline in a scratch copy of the repository (tests and the CI drift gate).

The copy holds the pipeline definition (dvc.yaml, params.yaml, experiments/) with the chosen
profile, and the `repro` package its stages run. Nothing in the working tree is touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from typing import Any, Callable

import yaml

from repro.config import load_profile_by_name
from repro.errors import ReproError

PIPELINE_FILES = ("dvc.yaml", "params.yaml", "experiments", "repro")


def copy_pipeline(repo: Path, dest: Path) -> None:
    """The pipeline definition and code of `repo` (PIPELINE_FILES) into `dest`."""
    for name in PIPELINE_FILES:
        src = Path(repo) / name
        if src.is_dir():
            shutil.copytree(src, Path(dest) / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, Path(dest) / name)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float | None = None) -> None:
    """Run `cmd`; past `timeout` seconds, or on any exception while waiting (the GPU check's
    step box raises one), its whole process group is killed: `dvc repro`'s stage processes
    would otherwise go on holding the device."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise ReproError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s in {cwd}; "
                             "killed") from None
        raise
    if proc.returncode != 0:
        raise ReproError(f"`{' '.join(cmd)}` failed in {cwd} (exit {proc.returncode}):\n"
                         f"{out[-4000:]}\n{err[-4000:]}")


def run_pipeline(repo: Path, dest: Path, profile: str, dry_run: bool = False,
                 data_search: list[str] | None = None,
                 edit_profile: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 scm: bool = True, targets: list[str] | None = None,
                 timeout: float | None = None) -> Path:
    """Copy the pipeline into `dest`, select `profile`, `dvc repro` it; returns `dest`.

    `edit_profile` rewrites the copied profile's sections before the run (the drift gate's
    seed sweep and its planted-change test use it); the working tree is never touched.
    `scm=False`: no git at all (`dvc init --no-scm`), for machines without git or pygit2 (the
    lent GPU machine). `targets`: the stages `dvc repro` runs (with what they need); default
    all. `timeout`: seconds for the whole `dvc repro`, then it is killed (ReproError).
    """
    repo, dest = Path(repo).resolve(), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copy_pipeline(repo, dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    # Shipped checkpoints are pipeline inputs (train stages install them), not outputs.
    shipped = params.get("paths", {}).get("shipped")
    if shipped and (repo / shipped).is_dir():
        shutil.copytree(repo / shipped, dest / shipped)
    params["profile"], params["dry_run"] = profile, dry_run
    if data_search is not None:
        params["data"]["search"] = data_search
    else:  # relative search folders are relative to the original repository
        params["data"]["search"] = [str((repo / p).resolve()) for p in params["data"].get("search", [])]
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _edit(dest, profile, edit_profile)
    env = _env()
    if scm:
        git = ["git", "-c", "user.name=repro", "-c", "user.email=repro@localhost"]
        _run(["git", "init", "-q"], dest, env)
        _run([sys.executable, "-m", "dvc", "init", "-q"], dest, env)
        _run([*git, "add", "-A"], dest, env)
        _run([*git, "commit", "-qm", "scratch pipeline"], dest, env)
    else:
        _run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], dest, env)
    _run([sys.executable, "-m", "dvc", "repro", "-q", *(targets or [])], dest, env, timeout)
    return dest


def rerun_pipeline(run: Path, dest: Path, profile: str,
                   edit_profile: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Path:
    """Copy a finished `run_pipeline` folder (its DVC cache and lock with it) into `dest`,
    apply `edit_profile` to its profile and `dvc repro` it: only the stages whose parameters
    the edit changes run again (the drift gate's planted change reuses CI's smoke run so)."""
    run, dest = Path(run), Path(dest)
    if not (run / "dvc.lock").is_file():
        raise ReproError(f"{run} holds no finished pipeline run (no dvc.lock); run it first")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(run, dest, symlinks=True)
    _edit(dest, profile, edit_profile)
    _run([sys.executable, "-m", "dvc", "repro", "-q"], dest, _env())
    return dest


def _edit(dest: Path, profile: str,
          edit_profile: Callable[[dict[str, Any]], dict[str, Any]] | None) -> None:
    """`edit_profile` applied to the profile resolved (so an edit sees the settings it
    inherits), written back as a profile that extends nothing."""
    if edit_profile is not None:
        resolved = load_profile_by_name(profile, dest / "experiments")
        (dest / "experiments" / f"{profile}.yaml").write_text(
            yaml.safe_dump(edit_profile(resolved), sort_keys=False))


def _env() -> dict[str, str]:
    return {**os.environ, "REPRO_PROGRESS": "0", "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
