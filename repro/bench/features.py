"""Discriminator feature extraction (imagenet32, 28672-d): ours vs a plain DataLoader loop."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from repro.bench.common import class_images, comparison, timed
from repro.bench.reference import ImageDataset
from repro.bench.roofline import count_flops, roofline
from repro.eval.features import extract_features, infer_bn_stats
from repro.registry import MODELS


def naive_features(D, images: torch.Tensor, device: torch.device, batch_size: int) -> np.ndarray:
    """What one writes first: DataLoader of per-sample float tensors, no_grad, .cpu().numpy()."""
    loader = DataLoader(ImageDataset(images, None, "tanh"), batch_size=batch_size, shuffle=False)
    D.eval()
    feats = []
    with torch.no_grad():
        for x, _ in loader:
            feats.append(D.feature_vector(x.to(device)).cpu().numpy())
    return np.concatenate(feats)


def make_features_model(device: torch.device, n_bn: int = 512, seed: int = 0):
    """imagenet32's D (fresh N(0, 0.02) weights: speed does not depend on training) with the
    authors' inferred BN statistics over n_bn images."""
    variant = MODELS.get("imagenet32")
    torch.manual_seed(seed)
    D = variant.build_discriminator().to(device)
    images, _ = class_images(n_bn, 3, 32, 10, seed=seed + 100)
    infer_bn_stats(D, images, device=device)
    return D


def naive_bn_stats(D, images: torch.Tensor, device: torch.device, batch_size: int) -> list:
    """The authors' BN recipe written plainly: a DataLoader of per-sample float tensors,
    no_grad, train-mode BN with forward pre-hooks summing each batch's biased variance and
    mean. Returns [(mean, var)] per BN layer (D's buffers are left alone)."""
    bns = [m for m in D.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    acc = [[0.0, 0.0] for _ in bns]

    def hook(i):
        def record(bn, inputs):
            x = inputs[0]
            var, mean = torch.var_mean(x.float(), dim=[0] + list(range(2, x.dim())), correction=0)
            acc[i][0] = acc[i][0] + mean.double()
            acc[i][1] = acc[i][1] + var.double()
        return record

    saved = [(bn.momentum, bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
    hooks = [bn.register_forward_pre_hook(hook(i)) for i, bn in enumerate(bns)]
    loader = DataLoader(ImageDataset(images, None, "tanh"), batch_size=batch_size, shuffle=False)
    n = 0
    try:
        D.train()
        with torch.no_grad():
            for x, _ in loader:
                D(x.to(device))
                n += 1
    finally:
        for h in hooks:
            h.remove()
        for bn, (mom, rm, rv) in zip(bns, saved):
            bn.momentum = mom
            bn.running_mean.copy_(rm)
            bn.running_var.copy_(rv)
        D.eval()
    return [(m / n, v / n) for m, v in acc]


def _forward_flops(D, images: torch.Tensor, batch_size: int, n: int, fn) -> float:
    m = min(n, batch_size)  # FLOPs are linear in the images: count one batch
    return count_flops(lambda: fn(images[:m]))[0] * n / m


def bench_features(device: torch.device, n: int, batch_size: int, repeats: int,
                   peak: dict | None = None) -> dict:
    """extract_features(fast=True) (NHWC) vs the plain loop, interleaved; also the default
    extract_features (fast=False: NCHW, the same values as before fast existed)."""
    D = make_features_model(device)
    images, _ = class_images(n, 3, 32, 10, seed=2)
    ours_t, nchw_t, naive_t = [], [], []
    for _ in range(repeats):
        t, f_ours = timed(lambda: extract_features(D, images, batch_size=batch_size, device=device,
                                                   dtype=np.float16, fast=True), device)
        ours_t.append(t)
        t, f_naive = timed(lambda: naive_features(D, images, device, batch_size), device)
        naive_t.append(t)
        t, f_nchw = timed(lambda: extract_features(D, images, batch_size=batch_size, device=device,
                                                   dtype=np.float16), device)
        nchw_t.append(t)
    # the same numbers (ours stores float16: relative rounding <= 2^-11)
    err = float(np.max(np.abs(f_ours.astype(np.float32) - f_naive) / (np.abs(f_naive) + 1e-3)))
    flops = _forward_flops(D, images, batch_size, n, lambda x: extract_features(
        D, x, batch_size=batch_size, device=device, dtype=np.float16, fast=True))
    rec = comparison(
        _fast_and_default(
            "extract_features(fast=True) (uint8 on device, inference_mode, channels_last, "
            "float16 out)", ours_t,
            "extract_features() (fast=False: NCHW, the values as before)", nchw_t, naive_t, n,
            float16_equal_to_fast=bool(np.array_equal(f_nchw, f_ours))),
        {"name": "DataLoader loop (per-sample float, no_grad, float32 .cpu().numpy())",
         "value": n / min(naive_t), "unit": "img/s", "runs_s": naive_t},
        "features", device, higher_is_better=True,
        sizes={"n_images": n, "feature_dim": int(f_ours.shape[1]), "batch_size": batch_size,
               "repeats": repeats},
        max_relative_difference=err,
        what="imagenet32 discriminator features (Table 1), images/s")
    rec["roofline"] = roofline(flops, min(ours_t), flops, min(naive_t), peak, "conv")
    return rec


def _fast_and_default(name: str, fast_t: list[float], default_name: str,
                      default_t: list[float], naive_t: list[float], n: int, **facts) -> dict:
    """The "ours" record of a fast=True path, with the default path's speed beside it (both
    in img/s over n images; `ratio`: the default against the plain loop)."""
    return {"name": name, "value": n / min(fast_t), "unit": "img/s", "runs_s": fast_t,
            "default": {"name": default_name, "value": n / min(default_t), "runs_s": default_t,
                        "ratio": min(naive_t) / min(default_t), **facts}}


def bench_bn_stats(device: torch.device, n: int, repeats: int, batch_size: int = 128,
                   peak: dict | None = None) -> dict:
    """infer_bn_stats(fast=True) vs the plain DataLoader loop of the same recipe
    (`naive_bn_stats`) and the default infer_bn_stats (fast=False), interleaved, on
    imagenet32's D."""
    variant = MODELS.get("imagenet32")
    torch.manual_seed(0)
    D = variant.build_discriminator().to(device)
    images, _ = class_images(n, 3, 32, 10, seed=6)
    bns = [m for m in D.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    ours_t, naive_t, default_t = [], [], []
    for _ in range(repeats):
        t, _ = timed(lambda: infer_bn_stats(D, images, batch_size=batch_size, device=device,
                                            fast=True), device)
        ours_t.append(t)
        ours = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
        t, plain = timed(lambda: naive_bn_stats(D, images, device, batch_size), device)
        naive_t.append(t)
        t, _ = timed(lambda: infer_bn_stats(D, images, batch_size=batch_size, device=device),
                     device)
        default_t.append(t)
    # per layer, relative to the layer's largest statistic (means near 0 have no relative scale)
    diff = max(float((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-12))
               for (am, av), (bm, bv) in zip(ours, plain) for a, b in ((am, bm), (av, bv)))
    flops = _forward_flops(D, images, batch_size, n, lambda x: infer_bn_stats(
        D, x, batch_size=batch_size, device=device, fast=True))
    rec = comparison(
        _fast_and_default(
            "infer_bn_stats(fast=True) (uint8 batches, inference_mode, channels_last, "
            "eval-mode BN on the hooks' batch statistics)", ours_t,
            "infer_bn_stats() (fast=False: the values as before)", default_t, naive_t, n),
        {"name": "DataLoader loop (per-sample float, no_grad, train-mode BN, var_mean hooks)",
         "value": n / min(naive_t), "unit": "img/s", "runs_s": naive_t},
        "features", device, higher_is_better=True,
        sizes={"n_images": n, "batch_size": batch_size, "repeats": repeats},
        max_relative_difference_of_statistics=diff,
        what="imagenet32 BN-statistics inference (the authors' recipe), images/s")
    rec["roofline"] = roofline(flops, min(ours_t), flops, min(naive_t), peak, "conv")
    return rec
