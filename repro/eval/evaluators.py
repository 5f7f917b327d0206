"""Registered evaluators: the classifiers the paper puts on top of samples or features.

Each entry is a factory `make(**options) -> classifier` with `fit(X, y) -> self` and
`predict(X) -> labels`, so tables pick their classifier by name from the profile and every
entry passes the same contract test (tests/test_evaluators.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from repro.eval.nearest import StreamingNN
from repro.eval.svm import make_svm
from repro.registry import EVALUATORS


class NearestNeighbour:
    """Exact 1-NN (Euclidean) over the fitted references: Table 3's classifier."""

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64):
        self.device, self.dtype = device, dtype

    def fit(self, X: Any, y: Any) -> "NearestNeighbour":
        self.refs = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        self.labels = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        return self

    def predict(self, X: Any) -> np.ndarray:
        nn = StreamingNN(torch.as_tensor(np.asarray(X), dtype=torch.float32),
                         device=self.device, dtype=self.dtype)
        nn.update(self.refs, self.labels)
        return nn.predict().cpu().numpy()


@EVALUATORS.register("nn1")
def make_nn1(**options: Any) -> NearestNeighbour:
    return NearestNeighbour(**options)


@EVALUATORS.register("l2svm")
def make_l2svm(C: float = 1.0, **options: Any):
    """Our torch L2-SVM (squared hinge, one-vs-rest; GPU when `device` is cuda)."""
    return make_svm("torch", C, **options)


@EVALUATORS.register("linearsvc")
def make_linearsvc(C: float = 1.0, **options: Any):
    """scikit-learn's LinearSVC with the same objective: the reference solver."""
    return make_svm("liblinear", C, **options)
