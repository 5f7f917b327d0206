"""scikit-learn's LinearSVC behind the `L2SVM` API: the reference solver (`make_svm("liblinear")`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from repro.eval.svm_objective import check_C, labels_of, l2svm_objective


class LinearSVCClassifier:
    """scikit-learn's LinearSVC (liblinear) behind the same API as `L2SVM` (CPU only)."""

    def __init__(self, C: float, tol: float = 1e-4, max_iter: int = 1000, dual: Any = "auto",
                 standardize: bool = False, intercept_scaling: float = 1.0, **_ignored: Any):
        from sklearn.svm import LinearSVC

        self.C = check_C(C)
        self.standardize = bool(standardize)
        self.s = float(intercept_scaling)
        self.model = LinearSVC(C=self.C, loss="squared_hinge", penalty="l2", dual=dual, tol=tol,
                               max_iter=max_iter, intercept_scaling=intercept_scaling)

    def _np(self, X: Any, fit: bool = False) -> np.ndarray:
        X = X.detach().cpu().numpy() if isinstance(X, Tensor) else np.asarray(X)
        X = X.astype(np.float64, copy=False)
        if self.standardize:
            if fit:
                self.mean_ = X.mean(0)
                sd = X.std(0)
                self.scale_ = np.where(sd > 0, sd, 1.0)
            X = (X - self.mean_) / self.scale_
        return X

    def fit(self, X: Any, y: Any) -> "LinearSVCClassifier":
        self.model.fit(self._np(X, fit=True), labels_of(y))
        self.classes_ = self.model.classes_
        self.coef_, self.intercept_ = self.model.coef_, self.model.intercept_
        self.n_iter_ = self.model.n_iter_
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return self.model.decision_function(self._np(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(self._np(X))

    def score(self, X: Any, y: Any) -> float:
        return float(np.mean(self.predict(X) == labels_of(y)))

    def objective(self, X: Any, y: Any) -> float:
        return l2svm_objective(self._np(X), y, self.coef_, self.intercept_, self.C,
                               self.classes_, self.s)
