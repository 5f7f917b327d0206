"""Contract: every registered evaluator (repro.registry.EVALUATORS) fits, predicts and scores
with one API and solves an easy problem; every protocol names a registered one; the probe
runner resolves a table's evaluator by name and names a changed one on the cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.errors import ReproError
from repro.eval.probe import choose_C, svm_draws
from repro.tables import protocols
from repro.registry import EVALUATORS

CENTRES = np.random.default_rng(42).normal(0, 5, size=(4, 12))
CPU = torch.device("cpu")


def _blobs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    return (CENTRES[y] + rng.normal(0, 1, size=(n, 12))).astype(np.float32), y


@pytest.mark.parametrize("name", EVALUATORS.names())
def test_evaluator_contract(name):
    ev = EVALUATORS.get(name)
    assert ev.name == name and ev.label.startswith(f"{name}: ")
    X, y = _blobs(200, 0)
    Xt, yt = _blobs(100, 1)
    clf = ev.make(C=1.0 if ev.regularised else None, device=CPU)
    assert clf.fit(X, y) is clf
    pred = np.asarray(clf.predict(Xt))
    assert pred.shape == (100,) and set(np.unique(pred)) <= set(np.unique(y))
    assert clf.score(Xt, yt) == pytest.approx((pred == yt).mean()) and clf.score(Xt, yt) > 0.9
    # the probe protocol's two steps run with any evaluator: C (if any) on draws, then test draws
    sel = choose_C(X, y, Xt, yt, grid=[1e-2, 1.0], per_class=10, draws=2, solver="torch",
                   seed=0, device=CPU, evaluator=name)
    assert (sel["best_C"] in (1e-2, 1.0)) if ev.regularised else sel["best_C"] is None
    accs = svm_draws(X, y, Xt, yt, per_class=10, draws=2, C=sel["best_C"], solver="torch",
                     seed=0, device=CPU, evaluator=name)
    assert len(accs) == 2 and min(accs) > 0.8


@pytest.mark.parametrize("name", sorted(protocols()))
def test_every_protocol_names_a_registered_evaluator(name):
    proto = protocols()[name]
    for ev in [proto.evaluator] + [r.evaluator for r in proto.rows.values()]:
        if ev is not None:
            assert ev in EVALUATORS


def test_an_unknown_evaluator_lists_the_valid_ones(tmp_path):
    from repro.config import Params
    from repro.tables import table2
    from repro.context import Stage
    from repro.protocols.runner import run_table

    valid = ", ".join(EVALUATORS.names())
    with pytest.raises(ReproError, match=f"unknown evaluator 'svm9'; valid names: {valid}"):
        EVALUATORS.get("svm9")
    stage = Stage("table2", "table2", table2.Table2Config(evaluator="svm9"),
                  Params(profile="x", device="cpu"), CPU)
    with pytest.raises(ReproError, match="unknown evaluator 'svm9'"):  # before any data loads
        run_table(table2.UNIT, stage, tmp_path, tmp_path / "t2.json", tmp_path)
