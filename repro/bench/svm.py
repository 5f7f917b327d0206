"""L2-SVM on n x 28672 discriminator features: ours (torch Newton-CG) vs scikit-learn LinearSVC.

Features: imagenet32's D (fresh weights, inferred BN statistics) on generated class images
(repro.bench.common.class_images), 10 classes: the shape and kind of Table 1's features. Both
solvers get the same float32 matrix, C and tol; fit time is timed (ours includes the copy of
X to the device, LinearSVC its float64 conversion); accuracy on held-out rows is compared.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from repro.bench.common import class_images, comparison, timed
from repro.bench.features import make_features_model
from repro.bench.roofline import count_flops, roofline
from repro.eval.features import extract_features
from repro.eval.svm import L2SVM, LinearSVCClassifier


def svm_data(device: torch.device, n_train: int, n_test: int, seed: int = 3):
    D = make_features_model(device)
    images, labels = class_images(n_train + n_test, 3, 32, 10, seed=seed, noise=0.6)
    X = extract_features(D, images, device=device, dtype=np.float32, desc="SVM features")
    y = labels.numpy()
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def bench_svm(device: torch.device, n_train: int, n_test: int, C: float, tol: float,
              repeats: int, data=None, peak: dict | None = None) -> dict:
    X_tr, y_tr, X_te, y_te = data if data is not None else svm_data(device, n_train, n_test)
    ours_t, alt_t = [], []
    caught: list[str] = []
    for _ in range(repeats):
        t, ours = timed(lambda: L2SVM(C, tol=tol, device=device).fit(X_tr, y_tr), device)
        ours_t.append(t)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            t, alt = timed(lambda: LinearSVCClassifier(C, tol=tol).fit(X_tr, y_tr), device)
        caught += sorted({str(x.message)[:160] for x in w})
        alt_t.append(t)
    acc_ours, acc_alt = ours.score(X_te, y_te), alt.score(X_te, y_te)
    obj_ours, obj_alt = ours.objective(X_tr, y_tr), alt.objective(X_tr, y_tr)
    diff_pp = 100 * abs(acc_ours - acc_alt)
    # liblinear's work is not torch's to count: the alternative gets no roofline entry
    flops = count_flops(lambda: L2SVM(C, tol=tol, device=device).fit(X_tr, y_tr))[0]
    rec = comparison(
        {"name": "L2SVM (torch, truncated Newton)", "value": min(ours_t), "unit": "s",
         "runs_s": ours_t, "accuracy": acc_ours, "objective": obj_ours, "n_iter": ours.n_iter_},
        {"name": "sklearn LinearSVC (liblinear, squared hinge)", "value": min(alt_t), "unit": "s",
         "runs_s": alt_t, "accuracy": acc_alt, "objective": obj_alt,
         "n_iter": int(np.max(alt.n_iter_)), "warnings": sorted(set(caught))},
        "svm", device, higher_is_better=False,
        sizes={"n_train": len(y_tr), "n_test": len(y_te), "n_features": int(X_tr.shape[1]),
               "n_classes": int(len(np.unique(y_tr))), "C": C, "tol": tol, "repeats": repeats},
        accuracy_diff_pp=diff_pp, accuracy_within_0_5pp=bool(diff_pp <= 0.5),
        what=f"L2-SVM fit, {len(y_tr)} x {X_tr.shape[1]} features, 10 classes")
    rec["roofline"] = roofline(flops, min(ours_t), None, None, peak, "matmul")
    return rec
