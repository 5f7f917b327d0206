"""The torch L2-SVM reaches LinearSVC's optimum (same objective, same accuracy)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from repro.errors import ReproError
from repro.eval.probe import choose_C
from repro.eval.svm import L2SVM, l2svm_objective, make_svm


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(n_samples=1000, n_features=200, n_informative=50, n_redundant=20,
                               n_classes=10, n_clusters_per_class=1, class_sep=1.5,
                               random_state=0)
    X = X.astype(np.float32)
    return X[:600], y[:600], X[600:], y[600:]


def _liblinear(X, y, C, dual):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LinearSVC(C=C, loss="squared_hinge", dual=dual, tol=1e-6, max_iter=100000).fit(X, y)


@pytest.mark.parametrize("C", [1e-3, 1e-1])
def test_matches_linearsvc(problem, C):
    Xtr, ytr, Xte, yte = problem
    ours = L2SVM(C).fit(Xtr, ytr)
    assert ours.coef_.shape == (10, 200) and ours.intercept_.shape == (10,)
    assert ours.decision_function(Xte).shape == (400, 10)
    # liblinear's dual solver needs ~13 s at C=0.1 to reach tol 1e-6: primal only there
    for dual in ((True, False) if C < 1e-2 else (False,)):
        sk = _liblinear(Xtr, ytr, C, dual)
        obj_sk = l2svm_objective(Xtr, ytr, sk.coef_, sk.intercept_, C)
        obj_ours = l2svm_objective(Xtr, ytr, ours.coef_, ours.intercept_, C)
        assert obj_ours == pytest.approx(ours.objective(Xtr, ytr), rel=1e-9)
        assert abs(obj_ours - obj_sk) <= 1e-3 * obj_sk  # brief: 1%; we reach 0.1%
        assert abs(ours.score(Xte, yte) - sk.score(Xte, yte)) <= 0.005
    pred = ours.predict(Xte)
    assert pred.dtype == ytr.dtype and set(np.unique(pred)) <= set(np.unique(ytr))


def test_inputs_tensor_float16_and_float64(problem):
    Xtr, ytr, Xte, _ = problem
    a = L2SVM(1e-2).fit(Xtr, ytr)
    b = L2SVM(1e-2, dtype=torch.float64).fit(torch.from_numpy(Xtr), torch.from_numpy(ytr))
    c = L2SVM(1e-2).fit(Xtr.astype(np.float16), ytr)  # e.g. a float16 feature memmap
    assert np.abs(a.decision_function(Xte) - b.decision_function(Xte)).max() < 1e-3
    assert (a.predict(Xte) == c.predict(Xte)).mean() > 0.97


def test_binary_like_sklearn(problem):
    Xtr, ytr, Xte, yte = problem
    yb, ytb = np.where(ytr < 5, 3, 7), np.where(yte < 5, 3, 7)
    C = 1e-2
    ours = L2SVM(C).fit(Xtr, yb)
    sk = _liblinear(Xtr, yb, C, dual=False)
    assert ours.coef_.shape == sk.coef_.shape == (1, 200)
    assert ours.decision_function(Xte).shape == (400,)
    assert abs(ours.objective(Xtr, yb) - l2svm_objective(Xtr, yb, sk.coef_, sk.intercept_, C)) \
        <= 1e-3 * ours.objective(Xtr, yb)
    assert (ours.predict(Xte) == sk.predict(Xte)).mean() >= 0.99
    assert set(np.unique(ours.predict(Xte))) <= {3, 7}
    assert abs(ours.score(Xte, ytb) - sk.score(Xte, ytb)) <= 0.005


def test_standardize_and_wrapper_agree(problem):
    Xtr, ytr, Xte, yte = problem
    Xs = Xtr * np.linspace(0.1, 10, 200, dtype=np.float32) + 3.0  # badly scaled features
    Xts = Xte * np.linspace(0.1, 10, 200, dtype=np.float32) + 3.0
    ours = make_svm("torch", 1e-2, standardize=True).fit(Xs, ytr)
    lib = make_svm("liblinear", 1e-2, standardize=True, dual=False, tol=1e-6, max_iter=100000)
    lib.fit(Xs, ytr)
    assert ours.objective(Xs, ytr) == pytest.approx(lib.objective(Xs, ytr), rel=1e-3)
    assert abs(ours.score(Xts, yte) - lib.score(Xts, yte)) <= 0.005
    # standardised fit == plain fit on explicitly standardised features
    mu, sd = Xs.astype(np.float64).mean(0), Xs.astype(np.float64).std(0)
    plain = L2SVM(1e-2, dtype=torch.float64).fit((Xs - mu) / sd, ytr)
    assert np.allclose(ours.coef_, plain.coef_, atol=1e-3)


def test_choose_C_on_the_whole_pool(problem):
    Xtr, ytr, Xte, yte = problem
    out = choose_C(Xtr, ytr, Xte, yte, grid=[1e-4, 1e-2], per_class=None, draws=1,
                   solver="torch", seed=0, device=torch.device("cpu"))
    assert set(out["val_acc"]) == {"0.0001", "0.01"}
    assert str(out["best_C"]) == max(out["val_acc"], key=lambda c: out["val_acc"][c][0])
    with pytest.raises(ReproError, match="non-empty grid"):
        choose_C(Xtr, ytr, Xte, yte, grid=[], per_class=None, draws=1, solver="torch", seed=0,
                 device=torch.device("cpu"))


def test_bad_input(problem):
    Xtr, ytr, _, _ = problem
    for C in (0, -1.0, float("nan")):
        with pytest.raises(ReproError):
            L2SVM(C)
        with pytest.raises(ReproError):
            make_svm("liblinear", C)
    with pytest.raises(ReproError, match="liblinear, torch"):
        make_svm("sgd", 1.0)
    with pytest.raises(ReproError):
        L2SVM(1.0).fit(Xtr, np.zeros(600))  # one class
    with pytest.raises(ReproError):
        L2SVM(1.0).fit(Xtr, ytr[:10])
    with pytest.raises(ReproError):
        L2SVM(1.0).predict(Xtr)  # not fitted
    with pytest.raises(ReproError):
        L2SVM(1e-3).fit(Xtr, ytr).predict(Xtr[:, :10])


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("precondition", ["nystrom", "jacobi"])
def test_kernel_and_primal_spaces_agree_when_features_outnumber_samples(standardize, precondition):
    """N < D (a 1000-label draw of 7168-d features): both Newton spaces reach LinearSVC's
    optimum; features far from centred (like D activations) are the hard case."""
    rng = np.random.default_rng(0)
    n, d = 150, 400
    y = rng.integers(0, 5, n)
    X = (rng.normal(size=(n, d)) + 3.0 + 0.7 * np.eye(5)[y] @ rng.normal(size=(5, d))).astype(np.float32)
    C = 1e-2
    kern = L2SVM(C, space="kernel", standardize=standardize, dtype=torch.float64).fit(X, y)
    prim = L2SVM(C, space="primal", standardize=standardize, precondition=precondition,
                 dtype=torch.float64).fit(X, y)
    assert kern.space_used_ == "kernel" and prim.space_used_ == "primal"
    assert L2SVM(C).fit(X, y).space_used_ == "kernel"  # auto picks it for N <= D
    assert kern.objective(X, y) == pytest.approx(prim.objective(X, y), rel=1e-4)
    if not standardize:
        sk = _liblinear(X, y, C, dual=True)
        obj_sk = l2svm_objective(X, y, sk.coef_, sk.intercept_, C)
        assert kern.objective(X, y) <= obj_sk * (1 + 1e-3)
    np.testing.assert_allclose(kern.decision_function(X), prim.decision_function(X), atol=1e-2)


def test_unknown_space_and_preconditioner_list_valid_names():
    with pytest.raises(ReproError, match="valid names: auto, primal, kernel"):
        L2SVM(1.0, space="dual")
    with pytest.raises(ReproError, match="valid names: nystrom, jacobi"):
        L2SVM(1.0, precondition="ilu")


def test_kernel_preconditioner_is_the_exact_inverse_and_threads_come_back():
    from repro.eval import svm_kernel

    g = torch.Generator().manual_seed(0)
    A = torch.randn(60, 200, generator=g, dtype=torch.float64) + 2.0  # far from centred
    K, C = A @ A.T + 1.0, 0.05
    r = torch.randn(60, 3, generator=g, dtype=torch.float64)
    exact = torch.linalg.solve(torch.eye(60, dtype=torch.float64) + 2 * C * K, r)
    torch.testing.assert_close(svm_kernel.preconditioner(K, C, exact_max=100, rank=8)(r), exact)
    before = torch.get_num_threads()
    with svm_kernel.cpu_threads_for(100, torch.device("cpu")):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
