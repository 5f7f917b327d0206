"""repro.bench: records, the reference loop, the CLI on tiny sizes, the Markdown rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from repro.bench import cli
from repro.bench.common import class_images, comparison, train_fast_path
from repro.bench.format import bench_markdown
from repro.bench.reference import reference_loop
from repro.bench.svm import bench_svm
from repro.errors import ReproError
from repro.registry import MODELS

CPU = torch.device("cpu")


def test_comparison_ratio_and_target():
    faster = comparison({"value": 30.0}, {"value": 10.0}, "train", CPU, higher_is_better=True)
    assert faster["ratio"] == pytest.approx(3.0) and faster["target"] == 1.3 and faster["target_met"]
    slower = comparison({"value": 4.0}, {"value": 2.0}, "svm", CPU, higher_is_better=False)
    assert slower["ratio"] == pytest.approx(0.5) and slower["target_met"] is False
    none = comparison({"value": 1.0}, {"value": 1.0}, "nn", CPU, higher_is_better=False)
    assert none["target"] is None and none["target_met"] is None


def test_class_images_shapes_and_determinism():
    a, ya = class_images(50, 3, 32, 10, seed=1)
    b, yb = class_images(50, 3, 32, 10, seed=1)
    assert a.dtype == torch.uint8 and a.shape == (50, 3, 32, 32) and ya.shape == (50,)
    assert torch.equal(a, b) and torch.equal(ya, yb)


@pytest.mark.parametrize("variant", ["svhn32", "lsun64_small"])
def test_the_cpu_fast_path_takes_the_same_step_to_float_rounding(variant):
    """The trainer is benchmarked with train_fast_path (channels_last on a CPU): the same
    update, summed in another order, so it agrees with the NCHW step to float32 rounding: D's
    loss and gradients (G's come after an
    Adam step of D, whose first step, g/|g|, turns rounding in a near-zero gradient into a
    whole lr-sized difference, so only G's loss is compared)."""
    from repro.bench.train import _fresh_trainer
    from repro.data.base import ImageSet

    fast = train_fast_path(CPU)
    assert fast == {"channels_last": True}
    spec = MODELS.get(variant).spec
    images, labels = class_images(16, spec.channels, spec.image_size, 10, seed=0)
    data = ImageSet(images=images, labels=labels, name="t", split="train", source="t", real=False)
    out = []
    for switches in ({}, fast):
        with _fresh_trainer(variant, data, CPU, 16, switches) as (trainer, idx):
            loss_d, loss_g = trainer._train_step(idx)
            grads = torch.cat([p.grad.flatten() for p in trainer.D.parameters()])  # D's step
        out.append((loss_d, loss_g, grads))
    (d0, g0, gr0), (d1, g1, gr1) = out
    torch.testing.assert_close(d1, d0, rtol=1e-5, atol=0)
    torch.testing.assert_close(g1, g0, rtol=1e-4, atol=0)
    # An activation within rounding of a (Leaky)ReLU kink moves a gradient by a slope's worth
    # there, and BN sums pass that on to its channel (lsun64_small: 11 of 1.1M elements
    # beyond 1e-3; D's first two blocks differ by 1e-3 in norm, the rest by 2e-6).
    close = torch.isclose(gr1, gr0, rtol=1e-3, atol=1e-3 * gr0.abs().max().item())
    assert close.float().mean().item() > 0.9999
    assert ((gr1 - gr0).norm() / gr0.norm()).item() < 1e-2


def test_reference_loop_trains_and_times():
    images, labels = class_images(40, 1, 28, 10, seed=0)
    r = reference_loop("mnist_cond", images, labels, CPU, batch_size=8, steps=2, warmup=1)
    assert r["images_per_second"] > 0 and np.isfinite(r["final_loss_d"]) and np.isfinite(r["final_loss_g"])


def test_svm_record_on_small_features():
    g = np.random.default_rng(0)
    X = g.normal(size=(120, 20)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    r = bench_svm(CPU, 80, 40, C=0.1, tol=1e-4, repeats=1, data=(X[:80], y[:80], X[80:], y[80:]))
    assert r["ratio"] > 0 and r["target"] == 3.0
    assert 0 <= r["accuracy_diff_pp"] <= 100 and isinstance(r["accuracy_within_0_5pp"], bool)
    # same objective, so both solvers land near the same optimum
    assert r["ours"]["objective"] == pytest.approx(r["alternative"]["objective"], rel=1e-3)


def test_count_flops_and_rate():
    from repro.bench.roofline import count_flops, rate

    a, b = torch.ones(8, 16), torch.ones(16, 4)
    flops, out = count_flops(lambda: a @ b)
    assert flops == 2 * 8 * 16 * 4 and out.shape == (8, 4)
    r = rate(1e9, 0.5, {"matmul_fp32_gflops": 4.0}, "matmul")
    assert r["gflops"] == pytest.approx(2.0) and r["fraction_of_peak"] == pytest.approx(0.5)


def test_only_names_are_checked():
    assert cli._selected("train/svhn32,nn") == ({"train", "nn"}, ["svhn32"])
    with pytest.raises(ReproError, match="valid names"):
        cli._selected("bogus")


def test_cli_tiny_run_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench.json"
    cli.main(["--quick", "--device", "cpu", "--only", "train/mnist_cond,nn,stream",
              "--train-batch", "8", "--train-steps", "2", "--train-warmup", "1",
              "--nn-refs", "300", "--nn-queries", "50", "--stream-samples", "400",
              "--stream-queries", "50", "--stream-chunk", "200", "--generate-batch", "200",
              "--out", str(out)])
    b = json.loads(out.read_text())
    assert b["device"] == "cpu" and b["torch"] == torch.__version__ and b["threads"] >= 1
    names = set(b["benchmarks"])
    assert names == {"train/mnist_cond", "nn/300x50x784", "nn_stream/400x50"}
    t = b["benchmarks"]["train/mnist_cond"]
    assert t["ours"]["value"] > 0 and t["alternative"]["value"] > 0 and t["target"] == 1.3
    nn = b["benchmarks"]["nn/300x50x784"]
    assert nn["ours"]["error_pct"] == pytest.approx(nn["alternative"]["error_pct"])
    assert b["benchmarks"]["nn_stream/400x50"]["projected_10M_vs_10k_s"] > 0
    md = bench_markdown(out)
    assert "| train/mnist_cond |" in md and "≥ 1.3x" in md
    # the roofline: the peak measured at the start, each path's fraction of it
    peak = b["peak"]
    assert peak["matmul_fp32_gflops"] > 0 and peak["conv_fp32_gflops"] > 0 and peak["memory_gbps"] > 0
    assert b["peak_end"]["conv_fp32_gflops"] > 0 and "Measured again at the end" in md
    roof = t["roofline"]
    assert 0 < roof["ours"]["fraction_of_peak"] and 0 < roof["alternative"]["fraction_of_peak"]
    # the limit: the step's share of convolution kernel time bounds what work outside them gains
    lim = t["limit"]
    assert 0 < lim["conv_share_of_step"] <= 1 and lim["conv_gflop_per_step"] > 0
    assert lim["ratio_ceiling"] > 0 and lim["conv_kernels_fraction_of_peak"] > 0
    assert lim["profiled_repeats"] == 3  # the quick mode's repeats, one profile each
    assert "convolution kernels" in md
    # FLOPs alone: the tutorial loop does more work per step than ours
    assert lim["flop_ratio"] > 1
    # each conv of the variant timed in both layouts, on the step's shapes
    lay = t["layouts"]
    assert len(lay["layers"]) == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
                                     for net in (MODELS.get("mnist_cond").build_generator(),
                                                 MODELS.get("mnist_cond").build_discriminator())
                                     for m in net.modules())
    assert all(x["nchw_s"] > 0 and x["channels_last_s"] > 0 and x["input"][0] == 8
               and 0 < x["best"]["fraction_of_peak"] for x in lay["layers"])
    assert lay["best_per_layer_speedup_vs_channels_last"] >= 1
    assert "per-layer layout" in md
    assert t["sizes"] and b["fast_path"] == {"channels_last": True}
    # the trainer skips D's weight gradients in G's pass: fewer FLOPs than the tutorial loop
    assert t["ours"]["flop_per_image"] < t["alternative"]["flop_per_image"]
    assert nn["roofline"]["ours"]["gflops"] > 0
    assert b["benchmarks"]["nn_stream/400x50"]["roofline"]["generation"]["gflop"] > 0
    assert "of peak" in md and "Peak measured" in md
    # --only merges into the existing file
    cli.main(["--quick", "--device", "cpu", "--only", "nn", "--nn-refs", "200",
              "--nn-queries", "20", "--out", str(out)])
    assert {"train/mnist_cond", "nn/200x20x784"} <= set(json.loads(out.read_text())["benchmarks"])
    # ... and refuses, before running anything, a file of another size mode: writing over it
    # would drop its entries
    before = out.read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--device", "cpu", "--only", "nn", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "quick=True figures and this run is device='cpu' quick=False" in capsys.readouterr().err
    assert out.read_text() == before


def test_markdown_shows_failures(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"device": "cpu", "device_name": "x", "torch": "t", "threads": 2,
                             "benchmarks": {"svm/1x1": {"error": "RuntimeError: boom"}}}))
    assert "failed: RuntimeError: boom" in bench_markdown(p)
