"""The L2-SVM's Newton method in coefficient space, for fewer samples than features (N <= D).

Same objective, same stopping rule and the same line search as the primal solver in
`repro.eval.svm`; only the space the Newton systems are solved in differs. The optimum lies
in the row space of Xs = [X, s] (representer theorem), so w = Xs^T alpha with alpha (N, K),
scores O = Kmat alpha with Kmat = Xs Xs^T (N x N), and every w-space quantity of the primal
method has an N-dimensional image:
- gradient      g = Xs^T gamma,  gamma = alpha - 2C viol * Y   (viol = max(0, 1 - Y O))
- Hessian       H Xs^T p = Xs^T (p + 2C a * (Kmat p))          (a = active set, viol > 0)
- inner product <Xs^T u, Xs^T v> = u^T Kmat v
The Newton system reduces to an SPD system on the active coefficients, solved by conjugate
gradients at O(N^2 K) per step instead of O(N D K): for Table 2 (1,000 labels x 7,168 dims) or Table 1's 4,000 x 28,672 this is 7-30x
fewer flops per step, after one O(N^2 D) product for Kmat.
Preconditioner: (I + 2C Kmat)^-1, the inverse of the Hessian with every sample active, from
a Cholesky factor of I + 2C Kmat (exact, up to `exact_max` samples) or a rank-`rank`
randomised Nystrom sketch of Kmat (above). D features are far from centred and have a
fast-decaying but heavy spectrum, which this preconditioner removes; Jacobi scaling cannot.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Callable, Iterator

import torch
from torch import Tensor

LineSearch = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


_LAST: dict = {}  # one cached Gram matrix: choosing C fits the same X once per C
# Up to this many samples the Newton loop runs its products on one CPU thread: a CG step is a
# few (N, N) x (N, K) products of a few ms each, where OpenMP's fork/join costs more than the
# second thread saves, and on an oversubscribed CPU a descheduled worker stalls every such
# product by a scheduler slice (measured on a loaded 2-core machine, N = 1000, K = 10:
# 16 ms per product with 2 threads, 1.8 ms with 1; a 1000-label fit 1.4-12 s -> 0.5-1.9 s).
SINGLE_THREAD_MAX = 2048
# The reduced system's CG stops at CG_FORCING * eta * ||rhs|| (eta <= 0.1, as the primal's).
# Its Euclidean residual bounds the w-space residual only loosely, so it must be far tighter
# than the primal's eta; measured on 1000 x 7168 and 1000 x 28672 D features, C 1e-4..0.1:
# 1e-2 stalls (200 Newton steps, objective 22-51 % high), 1e-3 takes 7/12/33 Newton steps at
# C = 1e-3/1e-2/0.1, 1e-4 takes 5/7/16 at 0.6-0.9x the time (CG steps cost an (N, N) x (N, K)
# product, Newton steps several plus a line search), so tighter is also faster.
CG_FORCING = 1e-4


@contextlib.contextmanager
def cpu_threads_for(n: int, device: torch.device) -> Iterator[None]:
    """One intra-op thread for the Newton loop of an n-sample CPU problem (see above)."""
    if device.type != "cpu" or n > SINGLE_THREAD_MAX or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gram(X: Tensor, s: float, mean: Tensor | None, scale: Tensor | None,
         block: int = 2048) -> Tensor:
    """Kmat = Xs Xs^T (N, N) float64, Xs = [(X - mean) / scale, s], in row blocks.

    The last result is kept for the same tensor object (a weak reference, so a freed tensor
    whose memory is reused never matches) when not standardised.
    """
    key = (float(s), X.shape, X.dtype)
    ref = _LAST.get("x")
    if mean is None and ref is not None and ref() is X and _LAST.get("key") == key:
        return _LAST["K"]
    K = _gram(X, s, mean, scale, block)
    if mean is None:
        _LAST.update(x=weakref.ref(X), key=key, K=K)
    return K


def _gram(X: Tensor, s: float, mean: Tensor | None, scale: Tensor | None, block: int) -> Tensor:
    n = X.shape[0]
    K = torch.empty((n, n), dtype=torch.float64, device=X.device)

    def rows(i: int) -> Tensor:
        xb = X[i:i + block]
        if mean is not None:
            xb = ((xb.double() - mean) / scale).to(X.dtype)
        return xb

    for i in range(0, n, block):
        xi = rows(i)
        for j in range(0, n, block):
            K[i:i + block, j:j + block] = (xi @ rows(j).T).double()
    return K + s * s


def sketch(apply: Callable[[Tensor], Tensor], dim: int, rank: int, device: torch.device
           ) -> tuple[Tensor, Tensor]:
    """Randomised Nystrom approximation U diag(lam) U^T of a PSD operator `apply`
    (Frangella, Tropp & Udell 2023), rank min(rank, dim), seeded: (U (dim, r), lam (r,))."""
    r = max(1, min(rank, dim))
    g = torch.Generator().manual_seed(0)
    Om = torch.randn(dim, r, generator=g, dtype=torch.float64).to(device)
    # Orthonormalise by Cholesky-QR (an r x r factorisation instead of a tall QR).
    Q = torch.linalg.solve_triangular(torch.linalg.cholesky(Om.T @ Om), Om.T, upper=False).T
    Y = apply(Q)  # (dim, r)
    nu = torch.finfo(torch.float32).eps * Y.norm()  # shift for a stable Cholesky
    Y = Y + nu * Q
    B = torch.linalg.cholesky(Q.T @ Y)
    F = torch.linalg.solve_triangular(B, Y.T, upper=False).T  # Y B^-T
    # Thin SVD of the tall F through the r x r eigenproblem of F^T F.
    ev, V = torch.linalg.eigh(F.T @ F)
    ev, V = ev.flip(0).clamp_min(0.0), V.flip(1)
    keep = ev > ev[0] * 1e-12
    return (F @ V[:, keep]) / ev[keep].sqrt(), (ev[keep] - nu).clamp_min(0.0)


def preconditioner(K: Tensor, C: float, exact_max: int, rank: int) -> Callable[[Tensor], Tensor]:
    """r -> (I + 2C K)^-1 r (up to a constant factor, which PCG does not see).

    Up to `exact_max` samples: exactly, by a Cholesky factor of I + 2C K (N^3/3 flops, ~30x
    cheaper than the eigendecomposition it replaces and as exact; SPD since K is PSD).
    Above: a rank-`rank` Nystrom sketch of K, exact on its span, 1/mu_min on the complement.
    """
    n = K.shape[0]
    if n <= exact_max:
        A = 2 * C * K
        A.diagonal().add_(1.0)
        L = torch.linalg.cholesky(A)
        del A
        return lambda r: torch.cholesky_solve(r, L)
    U, lam = sketch(lambda Q: K @ Q, n, rank, K.device)
    mu = 1.0 + 2 * C * lam  # (r,)
    return lambda r: r + U @ ((mu[-1] / mu - 1.0)[:, None] * (U.T @ r))


def newton(K: Tensor, Y: Tensor, *, C: float, tol: float, max_iter: int, cg_max_iter: int,
           line_search: LineSearch, exact_max: int = 2048, rank: int = 1024
           ) -> tuple[Tensor, int, bool]:
    """-> (alpha (N, K), Newton iterations, converged)."""
    precondition = preconditioner(K, C, exact_max, rank)

    def knorm(u: Tensor, Ku: Tensor) -> Tensor:
        return (u * Ku).sum(0).clamp_min(0.0).sqrt()

    alpha = torch.zeros_like(Y)
    O = torch.zeros_like(Y)  # (N, K) scores K alpha
    viol = (1.0 - Y * O).clamp_min(0.0)
    gam = alpha - 2 * C * viol * Y
    gnorm = knorm(gam, K @ gam)
    pos = (Y > 0).sum(0).double()
    g0 = gnorm * torch.clamp(torch.minimum(pos, Y.shape[0] - pos), min=1) / Y.shape[0]
    n_iter = 0
    for it in range(max_iter):
        todo = gnorm > tol * g0
        if not bool(todo.any()):
            return alpha, n_iter, True
        n_iter = it + 1
        a = (viol > 0).double()
        eta = torch.clamp(torch.sqrt(gnorm / g0.clamp_min(1e-300)), max=0.1)
        d = _cg(K, a, gam * todo, precondition, eta, C, cg_max_iter)
        Z = K @ d  # (N, K) score change along d
        t = line_search((alpha * Z).sum(0), (d * Z).sum(0), O, Z, Y)
        alpha = alpha + t * d
        O = O + t * Z
        viol = (1.0 - Y * O).clamp_min(0.0)
        gam = alpha - 2 * C * viol * Y
        gnorm = knorm(gam, K @ gam)
    return alpha, n_iter, not bool((gnorm > tol * g0).any())


def _cg(K: Tensor, a: Tensor, gam: Tensor, precondition, eta: Tensor, C: float,
        max_iter: int) -> Tensor:
    """The Newton direction delta of (I + 2C a * K) delta = -gam, all classes at once.

    Off the active set delta = -gam; on it, (I + 2C K_AA) delta_A = -gam_A + 2C K_A,off gam_off,
    a symmetric positive definite system solved by CG in the ordinary inner product,
    preconditioned by (I + 2C K)^-1 restricted to A (a principal block of an SPD matrix, so
    itself SPD, for exact and sketched spectra alike).
    """
    off = 1.0 - a
    rhs = a * (-gam + 2 * C * (K @ (off * gam)))
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    z = a * precondition(r)
    p = z.clone()
    rz = (r * z).sum(0)
    # The residual of the reduced system in plain Euclidean units bounds the w-space residual
    # only loosely: a forcing term 1e4x tighter than the primal solver's keeps the inexact
    # directions good descent directions (CG_FORCING above: its measurements).
    stop = CG_FORCING * eta * rhs.norm(dim=0)
    active = r.norm(dim=0) > stop
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        Hp = p + 2 * C * a * (K @ p)
        pHp = (p * Hp).sum(0)
        alpha = torch.where(active & (pHp > 0), rz / pHp.clamp_min(1e-300), torch.zeros_like(rz))
        x += alpha * p
        r -= alpha * Hp
        z = a * precondition(r)
        rz_new = (r * z).sum(0)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + beta * p
        rz = rz_new
        active = active & (r.norm(dim=0) > stop)
    return x - off * gam
