"""Contract: every registered evaluator fits and predicts, and solves an easy problem."""

from __future__ import annotations

import numpy as np
import pytest

from repro.registry import EVALUATORS


CENTRES = np.random.default_rng(42).normal(0, 5, size=(4, 12))


def _blobs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = CENTRES
    y = rng.integers(0, 4, size=n)
    return centres[y] + rng.normal(0, 1, size=(n, 12)), y


@pytest.mark.parametrize("name", EVALUATORS.names())
def test_evaluator_contract(name):
    X, y = _blobs(200, 0)
    Xt, yt = _blobs(100, 1)
    clf = EVALUATORS.get(name)()
    assert clf.fit(X, y) is clf
    pred = np.asarray(clf.predict(Xt))
    assert pred.shape == (100,)
    assert set(np.unique(pred)) <= set(np.unique(y))
    assert (pred == yt).mean() > 0.9


def test_registry_has_the_papers_classifiers():
    assert {"nn1", "l2svm", "linearsvc"} <= set(EVALUATORS.names())
