"""The GPU check's device path from a fresh checkout: `tools/gpu_check.sh prepare` for this
Python, then `run` in the check's CPU small mode, in a venv that holds only the lent GPU
machine's packages (tests/lent_env.py): no pydantic, dvc, dvclive, reportlab or mlxtend
installed, no project install, no git needed. What it proves for the lent machine: the wheels
are the whole of what the check lacks there, and the dry run's DVC runs from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import lent_env
from conftest import REPO

SCRIPT = REPO / "tools" / "gpu_check.sh"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "REPRO_PROGRESS": "0", **extra}


@pytest.mark.slow
def test_prepare_then_run_passes_without_the_optional_packages(tmp_path):
    python = lent_env.make(tmp_path / "venv")
    for name in lent_env.OPTIONAL:  # control: the venv really lacks them
        probe = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True)
        assert probe.returncode != 0, f"{name} is importable in the lent-machine venv"
    whl = tmp_path / "whl"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prep = subprocess.run(["bash", str(SCRIPT), "prepare", "--python-version", version],
                          env=_env(PYTHON=sys.executable, GPU_CHECK_WHL=str(whl)),
                          capture_output=True, text=True, timeout=600)
    if prep.returncode == 3:
        pytest.skip(f"prepare cannot reach the package index from here: {prep.stderr[-300:]}")
    assert prep.returncode == 0, prep.stderr[-3000:]
    assert "carry: [\".whl\"]" in prep.stdout and "bash tools/gpu_check.sh run" in prep.stdout
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(SCRIPT), "run", "--device", "cpu"],
                         env=_env(PYTHON=str(python), GPU_CHECK_WHL=str(whl), OUT=str(out)),
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    b = json.loads((out / "bench_gpu.json").read_text())
    assert (out / "bench_gpu.log").read_text().count("[bench --gpu]") >= 10
    assert b["small_mode"] is True
    assert not [k for k, v in b["steps"].items() if set(v) & {"error", "skipped", "running"}]
    # the dry run: DVC from the wheels, without git, one paper train stage
    assert "checkpoints/gan_mlp" in b["steps"]["dry_run"]["outputs"]
    train = b["projection"]["train"]
    assert train["mnist_cond"]["gpu_hours"] > 0 and train["lsun64"]["gpu_hours"] is None


def test_run_without_wheels_says_what_to_do(tmp_path):
    run = subprocess.run(["bash", str(SCRIPT), "run"], env=_env(GPU_CHECK_WHL=str(tmp_path / "none"),
                                                               OUT=str(tmp_path / "out")),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "tools/gpu_check.sh prepare" in run.stderr
    assert not (tmp_path / "out" / "bench_gpu.json").exists()


def test_prepare_refuses_a_malformed_python_version(tmp_path):
    prep = subprocess.run(["bash", str(SCRIPT), "prepare", "--python-version", "312"],
                          env=_env(GPU_CHECK_WHL=str(tmp_path / "w")), capture_output=True, text=True)
    assert prep.returncode == 2 and "like 3.12" in prep.stderr and not (tmp_path / "w").exists()


def test_dependencies_are_ranges_and_ci_pins_every_wheel():
    """pyproject.toml: ranges with the lent machine's releases as floors (a cluster's own torch
    must satisfy them as it is); exact versions only in .ci/constraints.txt, which also pins
    every wheel the check carries (prepare reads them there)."""
    import re
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if "==" in d]
    assert "torch>=2.11" in deps and "torchvision>=0.26" in deps
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    pins = {norm(l.split("==")[0]) for l in (REPO / ".ci/constraints.txt").read_text().splitlines()
            if "==" in l and not l.startswith("#")}
    wheels = [l.split()[0] for l in (REPO / "tools/gpu_check_wheels.txt").read_text().splitlines()
              if l.strip() and not l.startswith("#")]
    assert {"torch", "torchvision"} <= pins and not [w for w in wheels if norm(w) not in pins]
    assert "-c .ci/constraints.txt" in (REPO / ".ci/run").read_text()
