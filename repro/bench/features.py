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


def bench_features(device: torch.device, n: int, batch_size: int, repeats: int,
                   peak: dict | None = None) -> dict:
    D = make_features_model(device)
    images, _ = class_images(n, 3, 32, 10, seed=2)
    ours_t, naive_t = [], []
    for _ in range(repeats):
        t, f_ours = timed(lambda: extract_features(D, images, batch_size=batch_size, device=device,
                                                   dtype=np.float16), device)
        ours_t.append(t)
        t, f_naive = timed(lambda: naive_features(D, images, device, batch_size), device)
        naive_t.append(t)
    # the same numbers (ours stores float16: relative rounding <= 2^-11)
    err = float(np.max(np.abs(f_ours.astype(np.float32) - f_naive) / (np.abs(f_naive) + 1e-3)))
    m = min(n, batch_size)  # FLOPs are linear in the images: count one batch
    flops = count_flops(lambda: extract_features(D, images[:m], batch_size=batch_size,
                                                 device=device, dtype=np.float16))[0] * n / m
    rec = comparison(
        {"name": "extract_features (uint8 on device, inference_mode, float16 out)",
         "value": n / min(ours_t), "unit": "img/s", "runs_s": ours_t},
        {"name": "DataLoader loop (per-sample float, no_grad, float32 .cpu().numpy())",
         "value": n / min(naive_t), "unit": "img/s", "runs_s": naive_t},
        "features", device, higher_is_better=True,
        sizes={"n_images": n, "feature_dim": int(f_ours.shape[1]), "batch_size": batch_size,
               "repeats": repeats},
        max_relative_difference=err,
        what="imagenet32 discriminator features (Table 1), images/s")
    rec["roofline"] = roofline(flops, min(ours_t), flops, min(naive_t), peak, "conv")
    return rec
