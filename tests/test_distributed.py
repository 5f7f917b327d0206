"""DDP under torchrun's environment, 2 CPU processes on gloo, against 1 process.

The 2-process run takes each global batch in two shards (repro.train.distributed). With
SyncBatchNorm every BN layer sees global-batch statistics, so the weights after a few steps
match the 1-process run up to float rounding. Tolerance SYNC_TOL bounds the largest relative
difference ||w_2 - w_1|| / ||w_1|| over all G and D tensors after STEPS steps of mnist_cond
(batch 16); the measured value (printed with `pytest -s`) is an order below it, the same order
as between two 1-process runs with 1 and 2 threads (summation order alone; GAN steps amplify
rounding). Without SyncBatchNorm each rank normalises with its own 8 rows, another model of
the batch: the test requires that difference to exceed 10 x SYNC_TOL (so broken sharding
cannot hide behind the tolerance).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repro.errors import ReproError
from repro.train import distributed
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer
from repro.utils.device import resolve_device

from conftest import tiny_images

CPU = resolve_device("cpu")
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# max over G and D tensors of ||w_2proc - w_1proc|| / ||w_1proc|| after STEPS steps
SYNC_TOL = 5e-4
STEPS = 2

RUNS = {
    "sync_both": dict(sync_batchnorm=True, alternate_updates=False),
    "sync_alt": dict(sync_batchnorm=True, alternate_updates=True),
    "local_both": dict(sync_batchnorm=False, alternate_updates=False),
}

WORKER = r"""
import json, sys
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[3])
from conftest import tiny_images
from repro.train import distributed
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer
from repro.utils.device import resolve_device

torch.set_num_threads(1)
runs, out = json.loads(sys.argv[1]), Path(sys.argv[2])
with distributed.from_env("cpu") as info:
    assert info.world_size == 2, info
    data = tiny_images(64, 1, 28)
    for name, cfg in runs.items():
        r = GANTrainer(TrainConfig(**cfg), data, resolve_device("cpu"), out / f"{name}.pt").run(seed=7)
        if info.is_main:
            (out / f"{name}.json").write_text(json.dumps([r.final_loss_d, r.final_loss_g]))
    # SyncBatchNorm alone: rank r's half of a fixed batch vs plain BN on the whole batch.
    g = torch.Generator().manual_seed(0)
    full = torch.randn(8, 3, 4, 4, generator=g) * 3 + 1
    w = torch.randn(8, 3, 4, 4, generator=g)
    bn = torch.nn.BatchNorm2d(3)
    torch.nn.init.normal_(bn.weight, 1.0, 0.5)
    distributed.convert_sync_batchnorm(bn)
    assert isinstance(bn, torch.nn.BatchNorm2d)
    x = full[info.rank * 4:(info.rank + 1) * 4].clone().requires_grad_()
    with distributed.sync_batchnorm_active():
        y = bn(x)
    # per-rank loss = half the global sum; DDP would average parameter grads, so scale by 2
    (y * w[info.rank * 4:(info.rank + 1) * 4]).sum().backward()
    torch.save({"y": y.detach(), "gx": x.grad, "gw": bn.weight.grad, "rm": bn.running_mean,
                "rv": bn.running_var}, out / f"bn{info.rank}.pt")
"""


def _cfg(**kw) -> dict:
    base = dict(variant="mnist_cond", dataset="tiny", epochs=1, batch_size=16, max_steps=STEPS,
                weight_decay=2.5e-5, log_every=2, checkpoint_every=1000)
    base.update(kw)
    return base


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(WORKER)
    runs = json.dumps({k: _cfg(**v) for k, v in RUNS.items()})
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), REPRO_PROGRESS="0",
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, str(script), runs, str(out), str(TESTS)],
                                      env=env, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=120)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log
    return out


def _rel_diff(a: dict, b: dict) -> float:
    """max over float tensors of ||a - b|| / ||b||."""
    assert a.keys() == b.keys()
    return max(((a[k].double() - b[k].double()).norm() / b[k].double().norm().clamp_min(1e-12)).item()
               for k in a if a[k].is_floating_point())


@pytest.fixture(scope="module")
def one_process_runs(tmp_path_factory) -> dict[str, dict]:
    # sync_batchnorm is ignored in one process: one reference serves sync_both and local_both.
    out, refs = tmp_path_factory.mktemp("one"), {}
    for name in ("sync_both", "sync_alt"):
        GANTrainer(TrainConfig(**_cfg(**RUNS[name])), tiny_images(64, 1, 28), CPU,
                   out / f"{name}.pt").run(seed=7)
        refs[name] = torch.load(out / f"{name}.pt", weights_only=False)
    refs["local_both"] = refs["sync_both"]
    return refs


def _diff(two_process_runs: Path, one_process_runs: dict, name: str) -> float:
    one = one_process_runs[name]
    two = torch.load(two_process_runs / f"{name}.pt", weights_only=False)
    assert two["step"] == one["step"] == STEPS and two["complete"]
    return max(_rel_diff(two["generator"], one["generator"]),
               _rel_diff(two["discriminator"], one["discriminator"]))


@pytest.mark.parametrize("name", ["sync_both", "sync_alt"])
def test_two_processes_with_syncbn_match_one_process(two_process_runs, one_process_runs, name):
    diff = _diff(two_process_runs, one_process_runs, name)
    print(f"{name}: max relative difference 2 vs 1 process = {diff:.3g}")
    assert diff < SYNC_TOL


def test_without_syncbn_the_shards_bn_statistics_differ(two_process_runs, one_process_runs):
    local = _diff(two_process_runs, one_process_runs, "local_both")
    print(f"per-rank BN statistics: max relative difference = {local:.3g}")
    assert local > 10 * SYNC_TOL


def test_sync_batchnorm_matches_full_batch_bn(two_process_runs):
    g = torch.Generator().manual_seed(0)
    full = (torch.randn(8, 3, 4, 4, generator=g) * 3 + 1).requires_grad_()
    w = torch.randn(8, 3, 4, 4, generator=g)
    bn = torch.nn.BatchNorm2d(3)
    torch.nn.init.normal_(bn.weight, 1.0, 0.5)
    y = bn(full)
    (y * w).sum().backward()
    parts = [torch.load(two_process_runs / f"bn{r}.pt") for r in range(2)]
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([p["gx"] for p in parts]), full.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(parts[0]["gw"] + parts[1]["gw"], bn.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(parts[0]["rm"], bn.running_mean)
    torch.testing.assert_close(parts[0]["rv"], bn.running_var)


def test_single_process_is_not_distributed():
    info = distributed.current()
    assert not info.enabled and info.is_main and info.world_size == 1


def test_batch_must_split_evenly(monkeypatch):
    monkeypatch.setattr(distributed, "current", lambda: distributed.DistInfo(0, 3, 0))
    with pytest.raises(ReproError, match="divisible"):
        GANTrainer(TrainConfig(**_cfg()), tiny_images(64, 1, 28), CPU, Path("unused.pt"))
