"""The classifiers the paper puts on top of features or samples, registered by name
(`repro.registry.EVALUATORS`): each table's protocol names its evaluator (repro.published.
protocol), a table's section may name another, and the runners look the name up here, so an
unknown one is an error that lists the valid names.

An `Evaluator` makes classifiers with one API (`fit(X, y) -> self`, `predict(X) -> labels`,
`score(X, y) -> accuracy in [0, 1]`), so every entry passes the same contract test
(tests/test_evaluators.py). `regularised`: the protocol picks its C from a grid on validation
draws (the L2-SVM); otherwise it has no hyper-parameter to choose (1-NN). `stream`: how the
evaluator is fitted on references that arrive in chunks (Table 3's 10M samples), where it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from repro.eval.nearest import StreamingNN
from repro.eval.svm import make_svm
from repro.registry import EVALUATORS


@dataclass(frozen=True)
class Evaluator:
    name: str
    description: str
    regularised: bool
    factory: Callable[..., Any]
    stream: Callable[..., Any] | None = None

    @property
    def label(self) -> str:
        """What the cells record as their `evaluator`."""
        return f"{self.name}: {self.description}"

    def make(self, C: float | None = None, **options: Any) -> Any:
        """A fresh classifier; `C` only for a regularised evaluator. Options an evaluator
        does not use (the SVM's solver, tol, standardize for 1-NN) are ignored."""
        return self.factory(C, **options) if self.regularised else self.factory(**options)


class NearestNeighbour:
    """Exact 1-NN (Euclidean) over the fitted references (repro.eval.nearest)."""

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64,
                 **_unused: Any):
        self.device, self.dtype = device, dtype

    @staticmethod
    def _tensor(X: Any) -> Tensor:
        return X if isinstance(X, Tensor) else torch.from_numpy(np.asarray(X, np.float32))

    def fit(self, X: Any, y: Any) -> "NearestNeighbour":
        self.refs, self.labels = self._tensor(X), torch.as_tensor(np.asarray(y), dtype=torch.int64)
        return self

    def predict(self, X: Any) -> Tensor:
        nn = StreamingNN(self._tensor(X).to(self.device), device=self.device, dtype=self.dtype)
        nn.update(self.refs.to(self.device), self.labels.to(self.device))
        return nn.predict().cpu()

    def score(self, X: Any, y: Any) -> float:
        return float((self.predict(X).numpy() == np.asarray(y)).mean())


def _l2svm(C: float, solver: str = "torch", **options: Any) -> Any:
    return make_svm(solver, C, **options)


def register(evaluator: Evaluator) -> Evaluator:
    return EVALUATORS.register(evaluator.name)(evaluator)


L2SVM = register(Evaluator(
    "l2svm", "regularised linear L2-SVM (squared hinge), one-vs-rest", regularised=True,
    factory=_l2svm))
NN1 = register(Evaluator(
    "nn1", "1-nearest-neighbour, Euclidean", regularised=False,
    factory=NearestNeighbour, stream=StreamingNN))
