"""`python -m repro.bench --gpu`: the one-shot check for the first GPU machine, writing
results/bench_gpu.json. On the lent machine it runs through `tools/gpu_check.sh run` (no
network, git or project install there); the whole call fits 8 minutes of device time.

Steps, in this order, each with its own time box (BOXES, seconds; a step past it is stopped
and recorded as an error) and all inside `--budget-s` (a step is skipped when less than its
minimum is left). The JSON is rewritten before (as `running`) and after every step, so a
kill keeps what finished and names the step it interrupted:
  peak      the device's fp32 matmul / conv FLOP/s and copy bandwidth (repro.bench.roofline)
  train     GANTrainer (bf16 autocast + channels_last on CUDA) vs itself in fp32 NCHW and vs
            the tutorial loop, per paper variant, at the paper's batch sizes
  svm       L2SVM on n x 28672 features (50000 on CUDA) alone, then vs LinearSVC on a subset
            (LinearSVC on all 50000 x 28672 takes hours)
  nn        Table 3's stream: generated mnist_cond samples vs 10k queries, exact, projected
            to 10M x 10k
  features  imagenet32 D features of 50000 images vs a plain loop
  ddp       a 1-process DDP run of the trainer (NCCL on CUDA, gloo on CPU) in a subprocess:
            torchrun's path with one rank; the trainer is told it is distributed, so G and D
            are DDP-wrapped and every collective runs
  dry_run   last, so it cannot starve the measurements: the paper profile's dry run (every
            stage up to the report, generated data of the real shapes) in a scratch copy of
            the pipeline without git (repro.scratch.run_pipeline), killed at its box
From the rates, `projection` gives the paper profile's GPU-hours per train stage and the
evaluation steps at the paper's sizes (repro.bench.projection).
On a CPU (no GPU here, nor in CI) the same steps run at SMALL sizes, the dry run on one
train stage, so tests cover the code path in minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from repro.utils.io import write_json

SIZES = {
    "cuda": dict(variants=["mnist_cond", "gan_mlp", "svhn32", "imagenet32", "lsun64"],
                 batch=None, steps=40, warmup=10, repeats=2, svm_n=50000, svm_test=10000,
                 svm_subset=2000, nn_samples=2_000_000, nn_queries=10000, nn_chunk=500_000,
                 generate_batch=50000, features_n=50000, ddp_steps=20, dry_run_targets=None),
    "cpu": dict(variants=["mnist_cond"], batch=8, steps=2, warmup=1, repeats=1, svm_n=120,
                svm_test=60, svm_subset=60, nn_samples=600, nn_queries=50, nn_chunk=300,
                generate_batch=300, features_n=64, ddp_steps=2, dry_run_targets=["train@gan_mlp"]),
}
# Each step's time box in seconds (train: per variant). On CUDA the boxes of the measuring
# steps sum to well under the default budget (tools/gpu_check.sh: 300 s), and the dry run
# gets what is left, up to its own box.
BOXES = {
    "cuda": {"peak": 15, "train": 25, "svm": 45, "nn_stream": 30, "features": 20, "ddp": 25,
             "dry_run": 120},
    "cpu": {"peak": 30, "train": 90, "svm": 60, "nn_stream": 60, "features": 60, "ddp": 90,
            "dry_run": 120},
}
MIN_LEFT_S = 10  # a step starts only with this much of the budget (or its whole box) left
# the stages before the report (which has no GPU code, and whose PDF needs reportlab)
PAPER_DRY_RUN_TARGETS = ["table1", "table2", "table3", "figures"]


class StepTimeout(Exception):
    """A step ran past its time box."""


@contextlib.contextmanager
def time_box(seconds: float) -> Iterator[None]:
    """Raise StepTimeout in the step after `seconds` (SIGALRM: the main thread, between
    Python operations; a long native call ends first, and tools/gpu_check.sh's hard limit
    catches one that never does)."""
    def expire(signum, frame):
        raise StepTimeout(f"stopped at its {seconds:.0f} s time box")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _ddp_child(out: Path, device_type: str, steps: int) -> None:
    """One rank of a 1-process DDP run: opens the group itself (torchrun would) and trains."""
    import torch.distributed as dist

    from repro.bench.common import class_images
    from repro.data.base import ImageSet
    from repro.train import distributed
    from repro.train.config import TrainConfig
    from repro.train.trainer import GANTrainer

    class _OneRank(distributed.DistInfo):
        @property
        def enabled(self) -> bool:  # a 1-rank group, treated as distributed
            return True

    dist.init_process_group("nccl" if device_type == "cuda" else "gloo",
                            init_method=f"tcp://127.0.0.1:{os.environ['REPRO_DDP_PORT']}",
                            world_size=1, rank=0)
    distributed.current = lambda: _OneRank(0, 1, 0)  # noqa: E731  (this child process only)
    try:
        device = torch.device(device_type)
        images, labels = class_images(16 * (steps + 1), 1, 28, 10, seed=0)
        data = ImageSet(images=images, labels=labels, name="bench", split="train",
                        source="generated", real=False)
        cfg = TrainConfig(variant="mnist_cond", dataset="bench", epochs=1, batch_size=16,
                          max_steps=steps, log_every=max(1, steps), sync_batchnorm=True)
        with tempfile.TemporaryDirectory() as tmp:
            t = GANTrainer(cfg, data, device, Path(tmp) / "ddp.pt")
            r = t.run(seed=0)
            wrapped = type(t._G_step).__name__
        write_json(out, {"steps": r.steps, "images_per_second": r.images_per_second,
                         "final_loss_d": r.final_loss_d, "final_loss_g": r.final_loss_g,
                         "wrapper": wrapped, "backend": dist.get_backend()})
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_check(device: torch.device, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        env = {**os.environ, "REPRO_DDP_PORT": str(_free_port()), "REPRO_PROGRESS": "0"}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "repro.bench.gpu", "--ddp-child", str(out),
                               device.type, str(steps)], env=env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"DDP child exited {proc.returncode}: {proc.stderr[-2000:]}")
        rec = json.loads(out.read_text())
    rec["seconds"] = time.perf_counter() - t0
    return rec


def svm_check(device: torch.device, n: int, n_test: int, subset: int, peak: dict) -> dict:
    from repro.bench.common import timed
    from repro.bench.svm import bench_svm, svm_data
    from repro.eval.svm import L2SVM

    X_tr, y_tr, X_te, y_te = svm_data(device, n, n_test)
    t, clf = timed(lambda: L2SVM(0.01, device=device).fit(X_tr, y_tr), device)
    full = {"n_train": n, "seconds": t, "accuracy": clf.score(X_te, y_te), "n_iter": clf.n_iter_,
            "space": clf.space_used_}
    sub = bench_svm(device, subset, n_test, 0.01, 1e-4, 1,
                    data=(X_tr[:subset], y_tr[:subset], X_te, y_te), peak=peak)
    return {"full": full, "vs_linearsvc_subset": sub, "subset": subset}


def run_gpu(device: torch.device, out: Path, budget_s: float, repo: Path) -> dict:
    from repro.bench.cli import PAPER_BATCH
    from repro.bench.common import train_fast_path
    from repro.bench.features import bench_features
    from repro.bench.nn import bench_generated_stream
    from repro.bench.projection import paper_train_stages, project
    from repro.bench.roofline import measure_peak
    from repro.bench.train import bench_train
    from repro.utils.device import describe

    mode = "cuda" if device.type == "cuda" else "cpu"
    sz, boxes = SIZES[mode], BOXES[mode]
    stages = paper_train_stages(repo)
    t0 = time.perf_counter()
    steps: dict[str, Any] = {}

    def elapsed() -> float:
        return time.perf_counter() - t0

    def record() -> dict:
        return {"device": device.type,
                "device_name": describe(device) if device.type == "cuda" else "CPU (small mode)",
                "torch": torch.__version__, "cuda": torch.version.cuda,
                "small_mode": device.type != "cuda", "sizes": sz, "budget_s": budget_s,
                "boxes_s": boxes, "wall_time_s": round(elapsed(), 2), "steps": steps,
                "projection": project(steps, stages)}

    def step(name: str, box: str, fn: Callable[[], dict]) -> None:
        left = budget_s - elapsed()
        seconds = min(boxes[box], left)
        if left < min(MIN_LEFT_S, boxes[box]):
            steps[name] = {"skipped": f"{left:.0f} s of the {budget_s:.0f} s budget left"}
            print(f"[bench --gpu] {name}: skipped (budget)", flush=True)
            write_json(out, record())
            return
        print(f"[bench --gpu] {name} (box {seconds:.0f} s) ...", flush=True)
        # what a kill during the step leaves in the file
        steps[name] = {"running": f"started at {elapsed():.0f} s with a {seconds:.0f} s box; "
                                  "still listed so: the run was killed during it"}
        write_json(out, record())
        t = time.perf_counter()
        try:
            with time_box(seconds):
                steps[name] = fn()
        except Exception as e:  # record and go on: one failure must not lose the others
            if not isinstance(e, StepTimeout):
                traceback.print_exc()
            steps[name] = {"error": f"{type(e).__name__}: {e}", "timed_out": isinstance(e, StepTimeout)}
        steps[name]["step_seconds"] = round(time.perf_counter() - t, 2)
        print(f"[bench --gpu] {name}: {steps[name]['step_seconds']} s", flush=True)
        write_json(out, record())  # partial results survive a kill

    peak: dict = {}
    step("peak", "peak", lambda: peak.update(measure_peak(device, "cuda" if mode == "cuda" else "quick")) or dict(peak))
    fast = train_fast_path(device)
    workers = 2 if device.type == "cuda" else 0
    for v in sz["variants"]:
        batch = sz["batch"] or PAPER_BATCH.get(v, 128)
        step(f"train/{v}", "train", lambda v=v, batch=batch: bench_train(
            v, device, batch, sz["steps"], sz["warmup"], sz["repeats"], workers, fast, peak=peak,
            plain=True))
    step("svm", "svm", lambda: svm_check(device, sz["svm_n"], sz["svm_test"], sz["svm_subset"], peak))
    step("nn_stream", "nn_stream", lambda: bench_generated_stream(
        device, sz["nn_samples"], sz["nn_queries"], chunk=sz["nn_chunk"],
        generate_batch=sz["generate_batch"], peak=peak))
    step("features", "features", lambda: bench_features(device, sz["features_n"], 256, 1, peak=peak))
    step("ddp", "ddp", lambda: ddp_check(device, sz["ddp_steps"]))
    step("dry_run", "dry_run", lambda: dry_run(repo, sz["dry_run_targets"] or PAPER_DRY_RUN_TARGETS))
    rec = record()
    write_json(out, rec)
    return rec


def dry_run(repo: Path, targets: list[str]) -> dict:
    """The paper profile's dry run of `targets` in a scratch copy, without git."""
    from repro.scratch import run_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        dest = run_pipeline(repo, Path(tmp) / "paper", "paper", dry_run=True, scm=False,
                            targets=targets)
        outputs = sorted(str(p.relative_to(dest / "results")) for p in (dest / "results").glob("*/*")
                         if p.parent.name != "shipped")  # shipped: inputs
        return {"seconds": time.perf_counter() - t, "targets": targets, "outputs": outputs}


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--ddp-child":
    _ddp_child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
