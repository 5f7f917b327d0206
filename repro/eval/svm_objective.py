"""The regularised L2-SVM's objective and label conventions, shared by both solvers
(repro.eval.svm, ours in torch; repro.eval.svm_sklearn, liblinear's) so that each imports
them from here and neither imports the other's module."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repro.errors import ReproError

BLOCK_BYTES = 64 << 20  # row blocks of about this size when a matrix is walked on the host


def check_C(C: float) -> float:
    if not isinstance(C, numbers.Real) or not math.isfinite(C) or C <= 0:
        raise ReproError(f"SVM regularisation C must be a positive finite number, got {C!r}")
    return float(C)


def labels_of(y: Any) -> np.ndarray:
    y = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if y.ndim != 1:
        raise ReproError(f"labels must be 1-d, got shape {y.shape}")
    return y


def signs(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N,) labels -> (N, K') +-1 targets (K' = 1 for two classes, as in sklearn)."""
    if len(classes) == 2:
        return np.where(y == classes[1], 1.0, -1.0)[:, None]
    return np.where(y[:, None] == classes[None, :], 1.0, -1.0)


def l2svm_objective(X: Any, y: Any, coef: Any, intercept: Any, C: float,
                    classes: Any = None, intercept_scaling: float = 1.0) -> float:
    """The L2-SVM primal objective (summed over the one-vs-rest problems), in float64.

    coef (K', D) and intercept (K',) follow sklearn's layout (LinearSVC.coef_/intercept_):
    K' = 1 for binary problems. The intercept's weight v = intercept / intercept_scaling is
    penalised like liblinear does. `classes` defaults to the sorted unique labels of y.
    """
    y = labels_of(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    W = torch.as_tensor(np.asarray(coef), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(intercept), dtype=torch.float64).reshape(-1)
    if W.dim() != 2 or W.shape[0] != b.shape[0]:
        raise ReproError(f"coef {tuple(W.shape)} and intercept {tuple(b.shape)} do not match")
    Y = torch.from_numpy(signs(y, classes))
    if Y.shape[1] != W.shape[0]:
        raise ReproError(f"{W.shape[0]} weight vectors for {len(classes)} classes")
    loss = torch.zeros((), dtype=torch.float64)
    N = len(y)
    rows = max(1, BLOCK_BYTES // max(1, W.shape[1] * 8))
    for s in range(0, N, rows):
        xb = X[s:s + rows]
        xb = xb.detach().cpu().double() if isinstance(xb, Tensor) else torch.from_numpy(np.asarray(xb, np.float64))
        viol = (1.0 - Y[s:s + rows] * (xb @ W.T + b)).clamp_min(0.0)
        loss += (viol * viol).sum()
    reg = 0.5 * ((W * W).sum() + ((b / intercept_scaling) ** 2).sum())
    return float(reg + C * loss)
