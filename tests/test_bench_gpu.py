"""`python -m repro.bench --gpu` in its CPU small mode: every step runs and is recorded."""

from __future__ import annotations

import json

import pytest

from repro.bench import cli, features, gpu, svm


@pytest.fixture
def tiny(monkeypatch):
    sizes = dict(gpu.SIZES["cpu"], variants=[],  # train: tests/test_bench.py
                 batch=4, svm_n=40, svm_test=20,
                 svm_subset=20, nn_samples=200, nn_queries=20, nn_chunk=100, generate_batch=100,
                 features_n=8, ddp_steps=1)
    monkeypatch.setitem(gpu.SIZES, "cpu", sizes)
    small_bn = lambda device, n_bn=16, seed=0: make(device, n_bn=16, seed=seed)  # noqa: E731
    make = features.make_features_model
    monkeypatch.setattr(features, "make_features_model", small_bn)
    monkeypatch.setattr(svm, "make_features_model", small_bn)
    return sizes


def test_gpu_check_small_mode_on_cpu(tmp_path, tiny):
    out = tmp_path / "bench_gpu.json"
    cli.main(["--gpu", "--device", "cpu", "--out", str(out)])
    b = json.loads(out.read_text())
    assert b["device"] == "cpu" and b["small_mode"] is True
    steps = b["steps"]
    assert set(steps) == {"peak", "dry_run", "svm", "nn_stream", "features", "ddp"}
    assert "skipped" in steps["dry_run"]  # CPU: tests/test_pipeline_e2e.py runs the dry run
    assert not [k for k, v in steps.items() if "error" in v]
    assert steps["peak"]["matmul_fp32_gflops"] > 0
    assert steps["svm"]["full"]["n_train"] == 40 and steps["svm"]["vs_linearsvc_subset"]["ratio"] > 0
    assert steps["nn_stream"]["projected_10M_vs_10k_s"] > 0
    assert steps["ddp"]["wrapper"] == "DistributedDataParallel" and steps["ddp"]["steps"] == 1


def test_gpu_check_budget_skips_later_steps(tmp_path, tiny):
    out = tmp_path / "b.json"
    cli.main(["--gpu", "--device", "cpu", "--out", str(out), "--budget-s", "0"])
    steps = json.loads(out.read_text())["steps"]
    assert all("skipped" in v for v in steps.values())
