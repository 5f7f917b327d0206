"""`python -m repro.bench --gpu` in its CPU small mode: every step runs and is recorded; its
time boxes, budget and partial records; the projection; the report's section."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from repro.bench import cli, features, format, gpu, projection, svm
from repro.errors import ReproError

from conftest import REPO

PAPER_STAGES = {"mnist_cond", "gan_mlp", "svhn32", "imagenet32", "lsun64", "faces64"}


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
    # the real dry run (DVC from wheels, no git): tests/test_gpu_check_device.py
    monkeypatch.setattr(gpu, "dry_run", lambda repo, targets: {"targets": targets, "outputs": ["x"]})
    return sizes


def test_gpu_check_small_mode_on_cpu(tmp_path, tiny):
    out = tmp_path / "bench_gpu.json"
    cli.main(["--gpu", "--device", "cpu", "--out", str(out)])
    b = json.loads(out.read_text())
    assert b["device"] == "cpu" and b["small_mode"] is True
    steps = b["steps"]
    assert set(steps) == {"peak", "dry_run", "svm", "nn_stream", "features", "ddp"}
    assert not [k for k, v in steps.items() if "error" in v]
    assert steps["peak"]["matmul_fp32_gflops"] > 0
    assert steps["svm"]["full"]["n_train"] == 40 and steps["svm"]["vs_linearsvc_subset"]["ratio"] > 0
    assert steps["nn_stream"]["projected_10M_vs_10k_s"] > 0
    assert steps["ddp"]["wrapper"] == "DistributedDataParallel" and steps["ddp"]["steps"] == 1
    assert steps["dry_run"]["targets"] == ["train@gan_mlp"]
    proj = b["projection"]
    assert set(proj["train"]) == PAPER_STAGES and proj["train_gpu_hours_total"] is None
    assert all("not among this mode's steps" in t["why"] for t in proj["train"].values())
    assert proj["table3_stream_10M_x_10k_s"] == steps["nn_stream"]["projected_10M_vs_10k_s"]
    assert proj["l2svm_50000x28672_s"] > 0 and proj["features_s_per_100k_images"] > 0
    md = format.gpu_check_markdown(out)
    assert "| peak | ok |" in md and "CPU small mode" in md and "| faces64 | lsun64 | celeba |" in md


def _fake_steps(monkeypatch, sleep: dict[str, float]):
    """Every step replaced by one that sleeps `sleep[name]` seconds (0 if unnamed) and
    returns a record of the real one's shape."""
    import repro.bench.features as f
    import repro.bench.nn as nn
    import repro.bench.roofline as roof
    import repro.bench.train as tr

    def after(name, rec):
        def fn(*a, **k):
            time.sleep(sleep.get(name, 0))
            return dict(rec)
        return fn
    monkeypatch.setattr(roof, "measure_peak", after("peak", {"matmul_fp32_gflops": 1.0}))
    monkeypatch.setattr(tr, "bench_train", after("train", {"ours": {"value": 1000.0}, "sizes": {"batch_size": 8}}))
    monkeypatch.setattr(gpu, "svm_check", after("svm", {"full": {"seconds": 2.0, "n_train": 5000}}))
    monkeypatch.setattr(nn, "bench_generated_stream", after("nn_stream", {"projected_10M_vs_10k_s": 50.0}))
    monkeypatch.setattr(f, "bench_features", after("features", {"ours": {"value": 1e4}}))
    monkeypatch.setattr(gpu, "ddp_check", after("ddp", {"steps": 1}))
    monkeypatch.setattr(gpu, "dry_run", after("dry_run", {"targets": []}))


def test_a_step_past_its_box_is_stopped_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setitem(gpu.BOXES, "cpu", {**gpu.BOXES["cpu"], "svm": 0.5})
    _fake_steps(monkeypatch, {"svm": 5})
    out = tmp_path / "b.json"
    t = time.perf_counter()
    rec = gpu.run_gpu(gpu.torch.device("cpu"), out, 300, REPO)
    assert time.perf_counter() - t < 4
    svm_rec = rec["steps"]["svm"]
    assert svm_rec["timed_out"] is True and "0 s time box" in svm_rec["error"]
    assert all("error" not in v for k, v in rec["steps"].items() if k != "svm")
    assert json.loads(out.read_text())["steps"]["dry_run"] == {"targets": [], "step_seconds": 0.0}


def test_the_file_names_the_step_a_kill_interrupted(tmp_path, monkeypatch):
    out = tmp_path / "b.json"
    seen = {}
    _fake_steps(monkeypatch, {})
    monkeypatch.setattr(gpu, "ddp_check", lambda *a: seen.update(json.loads(out.read_text())) or {})
    gpu.run_gpu(gpu.torch.device("cpu"), out, 300, REPO)
    assert "killed during it" in seen["steps"]["ddp"]["running"]
    assert "error" not in seen["steps"]["features"] and "dry_run" not in seen["steps"]
    assert "running" not in json.loads(out.read_text())["steps"]["ddp"]


def test_steps_past_the_budget_are_skipped_and_the_dry_run_goes_last(tmp_path, monkeypatch):
    _fake_steps(monkeypatch, {"peak": 2.5})  # leaves less than MIN_LEFT_S of the 12 s
    rec = gpu.run_gpu(gpu.torch.device("cpu"), tmp_path / "b.json", 12, REPO)
    assert "error" not in rec["steps"]["peak"] and "skipped" not in rec["steps"]["peak"]
    later = [k for k in rec["steps"] if k != "peak"]
    assert later and all("skipped" in rec["steps"][k] for k in later)
    assert list(gpu.BOXES["cuda"])[-1] == "dry_run"


def test_the_cuda_boxes_leave_the_dry_run_room_in_the_default_budget():
    """The measuring steps' boxes (train: per variant) fit the default 300 s budget with a
    minute left for the dry run, so the whole call fits 8 minutes of device time."""
    boxes, variants = gpu.BOXES["cuda"], gpu.SIZES["cuda"]["variants"]
    measuring = sum(v for k, v in boxes.items() if k not in ("train", "dry_run"))
    assert measuring + boxes["train"] * len(variants) <= 300 - 30
    assert set(variants) == {st["variant"] for st in projection.paper_train_stages(REPO).values()}


def test_projection_is_epochs_times_images_times_seeds_over_the_rate():
    stages = projection.paper_train_stages(REPO)
    assert stages["mnist_cond"] == {"variant": "mnist_cond", "dataset": "mnist", "split": "train",
                                    "images_per_epoch": 50000, "epochs": 200, "seeds": 3,
                                    "batch_size": 128, "alternate_updates": True}
    steps = {f"train/{v}": {"ours": {"value": 1000.0}, "sizes": {"batch_size": 128}}
             for v in {s["variant"] for s in stages.values()}}
    steps["svm"] = {"full": {"seconds": 3.0, "n_train": 10000}}
    p = projection.project(steps, stages)
    assert p["train"]["mnist_cond"]["gpu_hours"] == pytest.approx(200 * 50000 * 3 / 1000 / 3600)
    assert p["train"]["faces64"]["gpu_hours"] == pytest.approx(10 * 162770 / 1000 / 3600)
    assert p["train_gpu_hours_total"] == pytest.approx(sum(t["gpu_hours"] for t in p["train"].values()))
    assert p["l2svm_50000x28672_s"] == pytest.approx(15.0) and "scaled linearly" in p["l2svm_basis"]
    assert p["table3_stream_10M_x_10k_s"] is None  # control: not measured, not invented
    steps["train/lsun64"] = {"skipped": "0 s of the 300 s budget left"}
    p = projection.project(steps, stages)
    assert p["train"]["lsun64"]["gpu_hours"] is None and "0 s of the 300 s budget" in p["train"]["faces64"]["why"]
    assert p["train_gpu_hours_total"] is None


def test_gpu_check_reports_a_failed_step(tmp_path, monkeypatch, capsys):
    _fake_steps(monkeypatch, {})
    monkeypatch.setattr(gpu, "ddp_check", lambda *a: 1 / 0)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--gpu", "--device", "cpu", "--out", str(tmp_path / "b.json")])
    assert exit_.value.code != 0 and "step(s) failed: ddp" in capsys.readouterr().err
    rec = json.loads((tmp_path / "b.json").read_text())["steps"]
    assert "ZeroDivisionError" in rec["ddp"]["error"] and "error" not in rec["dry_run"]


def test_a_boxed_pipeline_command_is_killed_with_its_children(tmp_path):
    """`dvc repro`'s stages are its children: past the box, the whole process group goes."""
    from repro.scratch import _run

    cmd = ["bash", "-c", "sleep 60 & echo $! > child.pid; wait"]
    t = time.perf_counter()
    with pytest.raises(ReproError, match="did not finish within 1 s"):
        _run(cmd, tmp_path, {}, timeout=1)
    assert time.perf_counter() - t < 10
    pid = int((tmp_path / "child.pid").read_text())
    for _ in range(50):  # killed: gone, or a zombie until its new parent reaps it
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "\nState:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the child {pid} outlived the box")
