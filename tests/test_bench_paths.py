"""The probe-fit, stream and feature benchmarks on tiny sizes, and the CPU fast paths they
time (generate's channels_last + fold transposed conv, extract_features/infer_bn_stats in
channels_last) against the plain NCHW paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from repro.bench.common import class_images
from repro.bench.features import bench_bn_stats, naive_bn_stats
from repro.bench.nn import bench_generated_stream, gpu_projection
from repro.bench.probe_fit import bench_probe_fit
from repro.eval.features import extract_features, infer_bn_stats
from repro.utils.device import channels_last_weights
from repro.registry import MODELS
from repro.train.sampling import _transpose_by_fold, cpu_fast_layout, generate

CPU = torch.device("cpu")


def test_probe_fit_record_reuses_one_draw_and_matches_linearsvc():
    g = np.random.default_rng(0)
    X = g.normal(size=(160, 40)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    data = (X[:100], y[:100], X[100:], y[100:])
    r = bench_probe_fit(CPU, 40, Cs=[1e-2, 1e-1], alt_Cs=[1e-1, 1.0], data=data)
    assert r["ours"]["unit"] == "s per fit" and r["ours"]["value"] > 0
    assert set(r["ours"]["by_C"]) == {"0.01", "0.1", "1.0"}  # 1.0: fitted for the check
    for c in ("0.1", "1.0"):
        assert r["ours"]["by_C"][c]["objective"] == pytest.approx(
            r["alternative"]["by_C"][c]["objective"], rel=1e-3)
    assert r["accuracy_diff_pp"] <= 5 and r["per_fit_target_s"] == 1.0
    assert r["roofline"]["ours"]["gflop"] > 0


def test_fold_transposed_conv_equals_the_module():
    torch.manual_seed(0)
    for m in (nn.ConvTranspose2d(7, 1, 5, stride=2, padding=2, output_padding=1),
              nn.ConvTranspose2d(5, 3, (4, 3), stride=(2, 1), padding=(1, 1), bias=False)):
        x = torch.randn(3, m.in_channels, 6, 5)
        with torch.no_grad():
            torch.testing.assert_close(_transpose_by_fold(m, x), m(x), rtol=1e-5, atol=1e-6)


def test_generate_fast_path_matches_plain_and_restores_G():
    v = MODELS.get("mnist_cond")
    torch.manual_seed(0)
    G = v.build_generator()
    before = {k: t.clone() for k, t in G.state_dict().items()}
    fast, y1 = generate(v, G, 300, seed=3, device=CPU, batch_size=150, uint8=False, fast=True)
    plain, y2 = generate(v, G, 300, seed=3, device=CPU, batch_size=150, uint8=False)
    assert torch.equal(y1, y2) and fast.is_contiguous()
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-4)
    for k, t in G.state_dict().items():
        assert torch.equal(t, before[k]) and t.is_contiguous(), k
    assert "forward" not in G.deconv4.__dict__  # the fold override is gone
    with cpu_fast_layout(G, torch.device("meta")):  # off a CPU: nothing changes
        assert "forward" not in G.deconv4.__dict__


def test_fast_features_and_bn_stats_match_the_default():
    v = MODELS.get("svhn32")
    torch.manual_seed(0)
    D = v.build_discriminator()
    images, _ = class_images(40, 3, 32, 10, seed=1)
    stats = []
    for cl in (True, False):
        infer_bn_stats(D, images, batch_size=16, fast=cl)
        stats.append([b.clone() for b in D.buffers()])
    for a, b in zip(*stats):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    f_cl = extract_features(D, images, batch_size=16, dtype=np.float32, fast=True)
    f_nchw = extract_features(D, images, batch_size=16, dtype=np.float32, fast=False)
    np.testing.assert_allclose(f_cl, f_nchw, rtol=1e-4, atol=1e-5)
    assert all(p.is_contiguous() for p in D.parameters())
    with channels_last_weights(D) as on:
        assert on and D.blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert D.blocks[0][0].weight.is_contiguous()


def test_bn_stats_record_and_the_plain_recipe_agree():
    r = bench_bn_stats(CPU, 48, repeats=1, batch_size=16)
    assert r["ours"]["value"] > 0 and r["alternative"]["value"] > 0
    assert r["max_relative_difference_of_statistics"] < 1e-3
    assert r["roofline"]["ours"]["fraction_of_peak"] is None  # no peak given
    D = MODELS.get("imagenet32").build_discriminator()
    assert len(naive_bn_stats(D, class_images(8, 3, 32, 10, seed=0)[0], CPU, 4)) == 5


def test_stream_record_has_the_plain_path_and_a_gpu_projection():
    r = bench_generated_stream(CPU, 200, 30, chunk=100, generate_batch=100)
    assert r["alternative"]["projected_10M_vs_10k_s"] > 0 and r["projected_ratio"] > 0
    assert r["samples_max_abs_difference"] < 1e-4
    p = r["gpu_projection"]
    assert p["label"].startswith("PROJECTION") and p["search_flop"] == 2.0 * 1e7 * 1e4 * 784
    assert p["generation_bf16_search_fp32_s"] < p["generation_fp32_search_fp32_s"]
    assert gpu_projection(1e6)["generation_flop"] == 1e13
