"""Regularised linear L2-SVM (squared hinge), one-vs-rest, in torch (Tables 1 and 2).

Objective, per class k, with y_ik = +1 if sample i is in class k else -1:

    0.5 * (||w_k||^2 + v_k^2) + C * sum_i max(0, 1 - y_ik * (w_k . x_i + s * v_k))^2

where s = `intercept_scaling` (1 by default) and the intercept is b_k = s * v_k. This is exactly
scikit-learn's `LinearSVC(loss="squared_hinge", penalty="l2", C=C, intercept_scaling=s)`
(liblinear): the bias is a constant feature of value s whose weight IS penalised, so
objectives of the two solvers are directly comparable (`l2svm_objective`).

Classes: K > 2 classes -> K one-vs-rest problems (coef_ (K, D), decision_function (N, K),
prediction = argmax). K == 2 -> like sklearn, ONE problem whose positive class is classes_[1]
(coef_ (1, D), decision_function (N,), prediction = classes_[1] where f > 0); one-vs-rest with
two columns would give the mirror solution twice (w_0 = -w_1) and a doubled objective.

Solver (ours, "torch"): all classes at once, a (D+1, K) weight matrix; a truncated Newton
method on the exact primal (Keerthi & DeCoste's finite Newton for the squared hinge): the
generalised Hessian of class k is I + 2C X_A^T X_A over its active set A (margin violators);
the Newton system is solved by preconditioned conjugate gradients with Hessian-vector
products (relative residual min(0.1, sqrt of the relative gradient)), then an exact line
search on the piecewise-quadratic objective, computed from the (N, K) margins (no extra
matmul). Deterministic (no sampling; the sketch below is seeded). Stops when, for every
class, ||grad_k|| <= tol * max(min(pos_k, neg_k), 1) / N * ||grad_k at w=0|| -- liblinear's
primal (dual=False) criterion, so `tol` means what it means for LinearSVC. X is held in
`dtype` (float32 by default) for the matmuls; weights, margins and line search are float64.
- Preconditioner (`precondition`): "nystrom" (default), a randomised rank-`rank` sketch of
  Xs^T Xs: discriminator features are far from centred and their Gram matrix has a few huge
  eigenvalues that make Jacobi-preconditioned CG crawl (measured: 5x fewer seconds on such
  features); "jacobi", the Hessian diagonal.
- Space (`space`): with fewer samples than features (a Table 2 draw: 1,000 x 7,168) the same
  Newton method runs on N coefficients instead (`repro.eval.svm_kernel`): O(N^2 K) per CG
  step after one N x N Gram product, exactly preconditioned. "auto" picks it for N <= D.
One host sync per CG step and per Newton step (convergence checks), none per sample.

Memory: X is copied once to `device` as an (N, D) tensor in `dtype` (filled in row blocks of
about 64 MB from a numpy array or memmap, so a float16 memmap never needs a full float32 copy
on the host); the solver adds O((N + D) * K) float64 work arrays and, for the preconditioner,
one block of X squared. 50,000 x 28,672 float32 features take 5.7 GB.

Scaling: features in, features used. `standardize=True` (default False) standardises each
feature by the training mean and standard deviation (constant features: scale 1); it is folded
into the matmuls, so X is never copied or modified, and applies again at prediction time.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repro.errors import ReproError
from repro.eval.svm_objective import BLOCK_BYTES, check_C, labels_of, l2svm_objective, signs
from repro.eval.svm_sklearn import LinearSVCClassifier
from repro.utils.device import as_device

SOLVERS = ("liblinear", "torch")
PRECONDITIONERS = ("nystrom", "jacobi")
# primal: Newton in the (D+1)-dim weight space; kernel: in the N-dim coefficient space
# (repro.eval.svm_kernel); auto: kernel when N <= D and N <= kernel_max, else primal.
SPACES = ("auto", "primal", "kernel")


def to_tensor(X: Any, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(N, D) numpy array / memmap / tensor -> tensor on `device` in `dtype`, in row blocks."""
    if isinstance(X, Tensor):
        if X.dim() != 2:
            raise ReproError(f"features must be 2-d (N, D), got shape {tuple(X.shape)}")
        return X.to(device=device, dtype=dtype)
    if not hasattr(X, "shape") or len(X.shape) != 2:
        raise ReproError("features must be a 2-d (N, D) numpy array, memmap or tensor")
    N, D = X.shape
    out = torch.empty((N, D), dtype=dtype, device=device)
    rows = max(1, BLOCK_BYTES // max(1, D * 8))
    for s in range(0, N, rows):
        block = np.ascontiguousarray(X[s:s + rows])
        out[s:s + rows] = torch.from_numpy(block).to(device=device, dtype=dtype)
    return out


class L2SVM:
    """One-vs-rest squared-hinge linear SVM in torch (see the module docstring)."""

    def __init__(self, C: float, tol: float = 1e-4, max_iter: int = 200,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 standardize: bool = False, intercept_scaling: float = 1.0,
                 cg_max_iter: int = 500, precondition: str = "nystrom", rank: int = 256,
                 space: str = "auto", kernel_max: int = 12_000):
        self.C = check_C(C)
        if tol <= 0 or max_iter < 1 or intercept_scaling <= 0:
            raise ReproError("tol and intercept_scaling must be > 0 and max_iter >= 1")
        self.tol, self.max_iter, self.cg_max_iter = float(tol), int(max_iter), int(cg_max_iter)
        self.device, self.dtype = as_device(device), dtype
        self.standardize, self.s = bool(standardize), float(intercept_scaling)
        if precondition not in PRECONDITIONERS:
            raise ReproError(f"unknown preconditioner {precondition!r}; valid names: "
                             f"{', '.join(PRECONDITIONERS)}")
        self.precondition, self.rank = precondition, int(rank)
        if space not in SPACES:
            raise ReproError(f"unknown solver space {space!r}; valid names: {', '.join(SPACES)}")
        self.space, self.kernel_max = space, int(kernel_max)
        self.mean_: Tensor | None = None
        self.scale_: Tensor | None = None

    # --- products with the (optionally standardised) design [X, s] -------------------------
    def _Xw(self, X: Tensor, Th: Tensor) -> Tensor:
        """(N, D) x (D+1, K) -> (N, K) float64 scores."""
        W = Th[:-1]
        if self.scale_ is not None:
            W = W / self.scale_[:, None]
        out = (X @ W.to(X.dtype)).double() + self.s * Th[-1]
        if self.mean_ is not None:
            out = out - self.mean_ @ W
        return out

    def _XTu(self, X: Tensor, U: Tensor) -> Tensor:
        """(N, D)^T x (N, K) -> (D+1, K) float64."""
        g = (X.T @ U.to(X.dtype)).double()
        tot = U.sum(0, keepdim=True)
        if self.mean_ is not None:
            g = g - self.mean_[:, None] * tot
        if self.scale_ is not None:
            g = g / self.scale_[:, None]
        return torch.cat([g, self.s * tot])

    def _diag(self, X: Tensor, A: Tensor) -> Tensor:
        """Diagonal of the generalised Hessian, (D+1, K): 1 + 2C sum_{i in A} x_ij^2."""
        D = X.shape[1]
        acc = torch.zeros((D, A.shape[1]), dtype=torch.float64, device=X.device)
        rows = max(1, BLOCK_BYTES // max(1, D * X.element_size()))
        for s in range(0, X.shape[0], rows):
            xb = X[s:s + rows]
            acc += ((xb * xb).T @ A[s:s + rows].to(X.dtype)).double()
        cnt = A.sum(0, keepdim=True)
        if self.mean_ is not None:
            xa = (X.T @ A.to(X.dtype)).double()
            acc = acc - 2 * self.mean_[:, None] * xa + self.mean_[:, None] ** 2 * cnt
        if self.scale_ is not None:
            acc = acc / self.scale_[:, None] ** 2
        return 1.0 + 2 * self.C * torch.cat([acc, self.s ** 2 * cnt])

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "L2SVM":
        y = labels_of(y)
        Xt = to_tensor(X, self.device, self.dtype)
        if Xt.shape[0] != len(y) or len(y) == 0:
            raise ReproError(f"{len(y)} labels for {Xt.shape[0]} feature rows")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ReproError("SVM training needs at least two classes in y")
        Y = torch.from_numpy(signs(y, self.classes_)).to(self.device)  # (N, K) float64
        self.mean_ = self.scale_ = None
        if self.standardize:
            mean = _column_sum(Xt, None) / Xt.shape[0]
            scale = (_column_sum(Xt, mean) / Xt.shape[0]).sqrt()
            self.mean_, self.scale_ = mean, torch.where(scale > 0, scale, torch.ones_like(scale))
        n, dim = Xt.shape
        kernel = self.space == "kernel" or (self.space == "auto" and n <= dim
                                            and n <= self.kernel_max)
        self.space_used_ = "kernel" if kernel else "primal"
        Th = self._kernel_newton(Xt, Y) if kernel else self._newton(Xt, Y)
        self.n_iter_ = self._n_iter
        W, v = Th[:-1], Th[-1]
        self.coef_ = W.T.cpu().numpy()  # (K', D), in the (standardised) feature space
        self.intercept_ = (self.s * v).cpu().numpy()  # (K',)
        self._theta = Th
        return self

    def _kernel_newton(self, X: Tensor, Y: Tensor) -> Tensor:
        from repro.eval import svm_kernel

        K = svm_kernel.gram(X, self.s, self.mean_, self.scale_)
        with svm_kernel.cpu_threads_for(K.shape[0], K.device):
            alpha, self._n_iter, ok = svm_kernel.newton(
                K, Y, C=self.C, tol=self.tol, max_iter=self.max_iter,
                cg_max_iter=self.cg_max_iter, line_search=self._line_search)
        if not ok:
            warnings.warn(f"L2SVM (C={self.C:g}) stopped at max_iter={self.max_iter} before "
                          f"reaching tol={self.tol:g}; raise max_iter", RuntimeWarning, stacklevel=3)
        return self._XTu(X, alpha)  # (D+1, K): w = Xs^T alpha

    def _newton(self, X: Tensor, Y: Tensor) -> Tensor:
        C, K = self.C, Y.shape[1]
        Th = torch.zeros((X.shape[1] + 1, K), dtype=torch.float64, device=X.device)
        O = torch.zeros_like(Y)  # (N, K) scores X Th

        def grad(Th, O):
            viol = (1.0 - Y * O).clamp_min(0.0)
            return Th - 2 * C * self._XTu(X, viol * Y), viol

        g, viol = grad(Th, O)
        nys = self._nystrom(X) if self.precondition == "nystrom" else None
        # liblinear's primal stopping rule: ||g_k|| <= tol * max(min(pos_k, neg_k), 1) / N * ||g_k(0)||
        pos = (Y > 0).sum(0).double()
        g0 = g.norm(dim=0) * torch.clamp(torch.minimum(pos, Y.shape[0] - pos), min=1) / Y.shape[0]
        self._n_iter = 0
        for it in range(self.max_iter):
            gnorm = g.norm(dim=0)
            todo = gnorm > self.tol * g0  # (K,)
            if not bool(todo.any()):
                break
            self._n_iter = it + 1
            A = (viol > 0).double()  # (N, K) active sets
            M = nys if nys is not None else self._diag(X, A)
            d = self._cg(X, A, -g * todo, M, self._eta(gnorm, g0) * gnorm)
            Z = self._Xw(X, d)  # (N, K) score change along d
            t = self._line_search((Th * d).sum(0), (d * d).sum(0), O, Z, Y)
            Th = Th + t * d
            O = O + t * Z
            g, viol = grad(Th, O)
        if bool((g.norm(dim=0) > self.tol * g0).any()):
            warnings.warn(f"L2SVM (C={C:g}) stopped at max_iter={self.max_iter} before reaching "
                          f"tol={self.tol:g}; raise max_iter", RuntimeWarning, stacklevel=3)
        return Th

    @staticmethod
    def _eta(gnorm: Tensor, g0: Tensor) -> Tensor:
        # CG forcing term: loose far from the optimum, tighter near it (superlinear Newton)
        return torch.clamp(torch.sqrt(gnorm / g0.clamp_min(1e-300)), max=0.1)

    def _nystrom(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Randomised Nystrom approximation U diag(lam) U^T of G = Xs^T Xs, Xs = [X, s]
        (Frangella, Tropp & Udell 2023), rank min(rank, N, D+1): (U (D+1, r), lam (r,)).

        The Hessians I + 2C X_A^T X_A are dominated by a few large directions of G (the feature
        mean above all: D activations are far from centred), which Jacobi scaling cannot
        remove; preconditioning with the top of G's spectrum makes CG's count independent of
        them. G bounds every active-set Gram from above, so one sketch serves the whole fit.
        """
        from repro.eval.svm_kernel import sketch

        return sketch(lambda Q: self._XTu(X, self._Xw(X, Q)), X.shape[1] + 1, self.rank, X.device)

    def _precondition(self, r: Tensor, M) -> Tensor:
        if isinstance(M, Tensor):  # Jacobi: the Hessian diagonal
            return r / M
        U, lam = M
        # P^-1 for (I + 2C G): U (1 + 2C lam_r)/(1 + 2C lam) U^T + (I - U U^T), up to scale
        mu = 1.0 + 2 * self.C * lam  # (r,)
        Ur = U.T @ r  # (r, K)
        return r + U @ ((mu[-1] / mu - 1.0)[:, None] * Ur)

    def _cg(self, X: Tensor, A: Tensor, b: Tensor, M, stop: Tensor) -> Tensor:
        """Solve (I + 2C X_A^T X_A) d = b for every column at once (preconditioned CG)."""
        x = torch.zeros_like(b)
        r = b.clone()
        z = self._precondition(r, M)
        p = z.clone()
        rz = (r * z).sum(0)
        active = r.norm(dim=0) > stop
        for _ in range(self.cg_max_iter):
            if not bool(active.any()):
                break
            Hp = p + 2 * self.C * self._XTu(X, A * self._Xw(X, p))
            pHp = (p * Hp).sum(0)
            alpha = torch.where(active & (pHp > 0), rz / pHp.clamp_min(1e-300), torch.zeros_like(rz))
            x += alpha * p
            r -= alpha * Hp
            z = self._precondition(r, M)
            rz_new = (r * z).sum(0)
            beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
            p = z + beta * p
            rz = rz_new
            active = active & (r.norm(dim=0) > stop)
        return x

    def _line_search(self, wd: Tensor, dd: Tensor, O, Z, Y, iters: int = 100) -> Tensor:
        """Exact minimiser t >= 0 of the objective along d, per class, (K,).

        phi(t) = 0.5 ||Th + t d||^2 + C sum_i max(0, a_i - t s_i)^2 is convex and piecewise
        quadratic, so phi' is increasing and piecewise linear: a bracketed Newton iteration
        (bisection when Newton leaves the bracket) lands on its root in a few steps. Costs
        O(N K) per step: margins a and their change s come from the (N, K) scores.
        """
        C = self.C  # wd = <w, d>, dd = <d, d> per class, (K,)
        a, s = 1.0 - Y * O, Y * Z  # (N, K)

        def slope(t):  # phi'(t), phi''(t)
            r = a - t * s
            act = r > 0
            return (wd + t * dd - 2 * C * (s * r * act).sum(0),
                    dd + 2 * C * (s * s * act).sum(0))

        live = dd > 0
        lo = torch.zeros_like(dd)
        hi = torch.ones_like(dd)
        for _ in range(64):  # grow hi until phi'(hi) > 0
            grow = live & (slope(hi)[0] <= 0)
            if not bool(grow.any()):
                break
            hi = torch.where(grow, 2 * hi, hi)
        t = torch.where(live, torch.ones_like(dd), torch.zeros_like(dd)).clamp(max=hi)
        for _ in range(iters):
            g1, g2 = slope(t)
            lo = torch.where(g1 <= 0, t, lo)
            hi = torch.where(g1 >= 0, t, hi)
            newton = t - g1 / g2.clamp_min(1e-300)
            inside = (newton > lo) & (newton < hi)
            t_new = torch.where(live, torch.where(inside, newton, 0.5 * (lo + hi)), t)
            done = (t_new == t) | (hi - lo <= 1e-15 * hi)
            t = t_new
            if bool(done.all()):
                break
        return t

    # --- prediction -------------------------------------------------------------------------
    def _scores(self, X: Any) -> Tensor:
        if not hasattr(self, "_theta"):
            raise ReproError("the SVM is not fitted; call fit(X, y) first")
        Xt = to_tensor(X, self.device, self.dtype)
        if Xt.shape[1] != self._theta.shape[0] - 1:
            raise ReproError(f"features have {Xt.shape[1]} dims, the SVM was fitted on "
                             f"{self._theta.shape[0] - 1}")
        return self._Xw(Xt, self._theta)

    def decision_function(self, X: Any) -> np.ndarray:
        """(N, K) scores, or (N,) for a binary problem (as sklearn)."""
        S = self._scores(X).cpu().numpy()
        return S[:, 0] if S.shape[1] == 1 else S

    def predict(self, X: Any) -> np.ndarray:
        S = self._scores(X)
        idx = (S[:, 0] > 0).long() if S.shape[1] == 1 else S.argmax(1)
        return self.classes_[idx.cpu().numpy()]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy in [0, 1]."""
        return float(np.mean(self.predict(X) == labels_of(y)))

    def objective(self, X: Any, y: Any) -> float:
        """Primal objective on (X, y), summed over classes (standardised X if standardize)."""
        if not hasattr(self, "_theta"):
            raise ReproError("the SVM is not fitted; call fit(X, y) first")
        if self.mean_ is not None:
            Xt = to_tensor(X, torch.device("cpu"), torch.float64)
            X = (Xt - self.mean_.cpu()) / self.scale_.cpu()
        return l2svm_objective(X, y, self.coef_, self.intercept_, self.C, self.classes_, self.s)


def _column_sum(X: Tensor, mean: Tensor | None) -> Tensor:
    """Per-feature sum of x (mean None) or of (x - mean)^2, float64, in row blocks."""
    acc = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
    rows = max(1, BLOCK_BYTES // max(1, X.shape[1] * 8))
    for s in range(0, X.shape[0], rows):
        xb = X[s:s + rows].double()
        acc += xb.sum(0) if mean is None else (xb - mean).pow(2).sum(0)
    return acc



def make_svm(solver: str, C: float, **kwargs: Any) -> L2SVM | LinearSVCClassifier:
    """"torch" -> `L2SVM(C, **kwargs)`; "liblinear" -> sklearn LinearSVC with the same API.

    kwargs a solver does not use (e.g. device for liblinear) are ignored by the liblinear one.
    """
    if solver == "torch":
        kwargs.pop("dual", None)
        return L2SVM(C, **kwargs)
    if solver == "liblinear":
        return LinearSVCClassifier(C, **kwargs)
    raise ReproError(f"unknown SVM solver {solver!r}; valid names: {', '.join(SOLVERS)}")
