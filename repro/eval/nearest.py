"""Exact 1-nearest-neighbour search over a stream of reference chunks (Table 3).

Table 3 fits 1-NN (Euclidean, raw pixels) on up to 10,000,000 generated samples and classifies
10,000 real test images. 10M x 784 values never fit in memory, so the references arrive in
chunks and `StreamingNN` keeps, per query, the running best squared distance, the label and
the global index of the best reference seen so far. The result after the first n references
is exactly the 1-NN classifier fitted on those n references.

Arithmetic. Squared distances use the expansion ||q||^2 - 2 q.r + ||r||^2 (one matmul per
block), computed in float64 by default. In float32 the expansion suffers cancellation: the
absolute error is about 1e-7 * (||q||^2 + ||r||^2), which for 784-d images in [0, 255]
(||q||^2 up to 5e7) is several units and can reorder neighbours whose distances are close;
on CUDA float32 matmuls may also silently run in TF32 when a caller enabled it. In float64 the
error is ~1e-16 relative (exact for integer-valued pixels: every term is an integer below
2^53), so results match a brute-force search such as scikit-learn's
`KNeighborsClassifier(n_neighbors=1, algorithm="brute")` up to exact ties. `dtype=torch.float32`
is available where speed matters more than exactness.

Screening (default for float64: `screen=True`). The float64 product costs ~2x the float32 one
on CPUs (and far more on most GPUs), so distances are first computed in float32 and float64
decides only among the candidates float32 cannot tell apart: for a query q, every reference
whose float32 distance lies within 2E of the block's float32 minimum, with the rigorous
rounding bound E = (D + 4) * 2^-24 * 2 * (||q||^2 + 2 max_r ||r||^2) of the float32 expansion
(any summation order, FMA or not). The true nearest reference is always among them (its float32
distance is at most its exact one + E <= the float32 minimum + 2E), so the result, ties
included, is that of the float64 search; candidates are few (typically 1-3 per query per
block). Off where TF32 is enabled for CUDA matmuls (the bound does not hold there).

Ties. The earliest reference (lowest global index) wins: within a block `min` returns the
first minimal index, and across blocks a later reference replaces the current best only when
it is strictly closer. This is what brute force does in practice (sklearn's ordering of exact
ties is not documented, so tests compare it on tie-free data and check our rule separately).

Memory: see `memory_bound_bytes`.
"""

from __future__ import annotations

import time
from typing import Iterable

import torch
from torch import Tensor

from repro.errors import ReproError
from repro.utils.device import as_device
from repro.utils.progress import progress


def memory_bound_bytes(Q: int, D: int, chunk: int, query_block: int = 4096,
                       itemsize: int = 8) -> int:
    """Upper bound on the device memory (bytes) `StreamingNN` allocates, inputs excluded.

    With s = itemsize of the compute dtype (8 for float64, 4 for float32), B = min(query_block, Q)
    and R = chunk (the reference rows processed at once, `ref_block`):

        s*Q*D + s*Q                 queries in the compute dtype, their squared norms
      + (s + 8 + 8)*Q               state: best_dist2, best_index (int64), best_label (int64)
      + s*R*D + s*R + 8*R           one reference block in the compute dtype, its norms, labels
      + s*B*R                       the (B, R) distance block
      + 4*(s + 16)*B                per-query-block temporaries (min values, argmin, labels,
                                    "better" mask, the torch.where results)

    The caller's chunk itself (any size, any device) is not counted: it is read block by block.
    Example: Q=10,000, D=784, R=65,536, B=4,096, float64 -> about 2.6 GB.
    """
    B = min(query_block, Q)
    s = itemsize
    return (s * Q * D + s * Q + (s + 16) * Q
            + s * chunk * D + s * chunk + 8 * chunk
            + s * B * chunk + 4 * (s + 16) * B)


class StreamingNN:
    """Exact 1-NN of `queries` among all references passed to `update` so far.

    queries: (Q, D) float (any float dtype; copied to `device` in `dtype`).
    query_block: queries per distance block; ref_block: reference rows per distance block.
    Together they bound memory (`memory_bound_bytes(Q, D, ref_block, query_block)`).
    No host synchronisation happens in `update`; only `predict()` consumers that read values
    (e.g. `.item()`) wait for the device.
    """

    def __init__(self, queries: Tensor, device: str | torch.device = "cpu",
                 query_block: int = 4096, ref_block: int = 65536,
                 dtype: torch.dtype = torch.float64, screen: bool = True):
        if queries.dim() != 2 or queries.shape[0] == 0:
            raise ReproError(f"queries must be a non-empty (Q, D) tensor, got shape {tuple(queries.shape)}")
        if query_block < 1 or ref_block < 1:
            raise ReproError("query_block and ref_block must be positive")
        if dtype not in (torch.float32, torch.float64):
            raise ReproError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.device = as_device(device)
        self.dtype = dtype
        self.query_block = int(query_block)
        self.ref_block = int(ref_block)
        self.queries = queries.to(device=self.device, dtype=dtype)  # (Q, D)
        self.query_norm2 = (self.queries * self.queries).sum(1)  # (Q,)
        tf32 = self.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
        self.screen = bool(screen) and dtype == torch.float64 and not tf32
        if self.screen:
            self.queries32 = self.queries.float()  # (Q, D)
            self.query_norm2_32 = self.query_norm2.float()  # (Q,)
            # the float32 expansion's rounding bound per unit of ||q||^2 + 2 max ||r||^2
            self._eps = 2.0 * (self.queries.shape[1] + 4) * 2.0 ** -24
        Q = self.queries.shape[0]
        self.best_dist2 = torch.full((Q,), float("inf"), dtype=dtype, device=self.device)
        self.best_index = torch.full((Q,), -1, dtype=torch.int64, device=self.device)
        self.best_label = torch.full((Q,), -1, dtype=torch.int64, device=self.device)
        self.n_seen = 0

    @property
    def dim(self) -> int:
        return self.queries.shape[1]

    def update(self, refs: Tensor, ref_labels: Tensor) -> None:
        """Fold (R, D) references with (R,) integer labels into the running nearest neighbours."""
        if refs.dim() != 2 or refs.shape[1] != self.dim:
            raise ReproError(f"references must have shape (R, {self.dim}), got {tuple(refs.shape)}")
        if ref_labels.shape != (refs.shape[0],):
            raise ReproError(f"{tuple(ref_labels.shape)} labels for {refs.shape[0]} references")
        if ref_labels.is_floating_point() or ref_labels.is_complex():
            raise ReproError(f"reference labels must be integers, got {ref_labels.dtype}")
        R = refs.shape[0]
        for start in range(0, R, self.ref_block):
            stop = min(start + self.ref_block, R)
            r = refs[start:stop].to(device=self.device, dtype=self.dtype)  # (R_b, D)
            lab = ref_labels[start:stop].to(device=self.device, dtype=torch.int64)  # (R_b,)
            self._fold(r, lab, self.n_seen + start)
        self.n_seen += R

    def _fold(self, r: Tensor, lab: Tensor, offset: int) -> None:
        if self.screen:
            return self._fold_screened(r, lab, offset)
        r_norm2 = (r * r).sum(1)  # (R_b,)
        r_t = r.t()
        Q = self.queries.shape[0]
        for qs in range(0, Q, self.query_block):
            qe = min(qs + self.query_block, Q)
            # ||r||^2 - 2 q.r ; ||q||^2 is added after the min (constant along the row)
            block = torch.addmm(r_norm2.unsqueeze(0), self.queries[qs:qe], r_t, alpha=-2.0)
            vals, idx = block.min(dim=1)  # first minimal index on ties
            del block
            vals = (vals + self.query_norm2[qs:qe]).clamp_min_(0.0)
            better = vals < self.best_dist2[qs:qe]  # strict: earlier references win ties
            self.best_dist2[qs:qe] = torch.where(better, vals, self.best_dist2[qs:qe])
            self.best_index[qs:qe] = torch.where(better, idx + offset, self.best_index[qs:qe])
            self.best_label[qs:qe] = torch.where(better, lab[idx], self.best_label[qs:qe])

    def _fold_screened(self, r: Tensor, lab: Tensor, offset: int) -> None:
        """`_fold` with a float32 screen and a float64 decision (see the module docstring)."""
        r_norm2 = (r * r).sum(1)  # (R_b,) float64
        r32 = r.float()
        r_norm2_32 = r_norm2.float()
        r_t32 = r32.t()
        r_max = float(r_norm2.max())
        Q = self.queries.shape[0]
        for qs in range(0, Q, self.query_block):
            qe = min(qs + self.query_block, Q)
            block = torch.addmm(r_norm2_32.unsqueeze(0), self.queries32[qs:qe], r_t32, alpha=-2.0)
            vals32 = block.min(dim=1).values  # (B,) float32 minimum of ||r||^2 - 2 q.r
            bound = self._eps * (self.query_norm2[qs:qe] + 2.0 * r_max)  # (B,) float64
            thresh = (vals32.double() + 2.0 * bound).float()
            thresh = torch.nextafter(thresh, torch.full_like(thresh, float("inf")))
            qi, ri = (block <= thresh.unsqueeze(1)).nonzero(as_tuple=True)  # candidates
            del block
            # float64 distances of the candidates, the same expansion as the plain path
            dots = (self.queries[qs + qi] * r[ri]).sum(1)
            d64 = (r_norm2[ri] - 2.0 * dots + self.query_norm2[qs + qi]).clamp_min(0.0)
            B = qe - qs
            vals = torch.full((B,), float("inf"), dtype=d64.dtype, device=d64.device)
            vals = vals.scatter_reduce(0, qi, d64, reduce="amin")
            # lowest reference index among the candidates at the minimal distance
            at_min = d64 == vals[qi]
            R = r.shape[0]
            idx = torch.full((B,), R, dtype=torch.int64, device=ri.device).scatter_reduce(
                0, qi, torch.where(at_min, ri, torch.full_like(ri, R)), reduce="amin")
            better = vals < self.best_dist2[qs:qe]  # strict: earlier references win ties
            self.best_dist2[qs:qe] = torch.where(better, vals, self.best_dist2[qs:qe])
            self.best_index[qs:qe] = torch.where(better, idx + offset, self.best_index[qs:qe])
            self.best_label[qs:qe] = torch.where(better, lab[idx], self.best_label[qs:qe])

    def predict(self) -> Tensor:
        """(Q,) int64 label of each query's nearest reference (on `device`)."""
        if self.n_seen == 0:
            raise ReproError("1-NN has seen no reference samples; pass at least one non-empty chunk")
        return self.best_label.clone()


def _error_pct(pred: Tensor, labels: Tensor) -> float:
    labels = labels.to(pred.device)
    if labels.shape != pred.shape:
        raise ReproError(f"{tuple(labels.shape)} query labels for {pred.shape[0]} queries")
    return 100.0 * (pred != labels).double().mean().item()


def nn_error(queries: Tensor, query_labels: Tensor, refs: Tensor, ref_labels: Tensor,
             chunk: int = 65536, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float64) -> float:
    """Test error (%) of 1-NN fitted on (refs, ref_labels), classifying the queries."""
    nn = StreamingNN(queries, device=device, ref_block=chunk, dtype=dtype)
    nn.update(refs, ref_labels)
    return _error_pct(nn.predict(), query_labels)


def stream_nn_error(queries: Tensor, query_labels: Tensor,
                    chunks: Iterable[tuple[Tensor, Tensor]], total: int | None = None,
                    device: str | torch.device = "cpu", desc: str = "1-NN",
                    query_block: int = 4096, ref_block: int = 65536,
                    dtype: torch.dtype = torch.float64) -> dict:
    """Drive a `StreamingNN` over (refs, labels) chunks with a progress bar.

    Returns {"error_pct": float, "n_refs": int, "seconds": float}.
    An empty stream raises ReproError.
    """
    t0 = time.perf_counter()
    nn = StreamingNN(queries, device=device, query_block=query_block, ref_block=ref_block,
                     dtype=dtype)
    with progress(total=total, desc=desc, unit="sample") as bar:
        for refs, labels in chunks:
            nn.update(refs, labels)
            bar.update(refs.shape[0])
    error = _error_pct(nn.predict(), query_labels)  # .item() waits for the device
    return {"error_pct": error, "n_refs": nn.n_seen, "seconds": time.perf_counter() - t0}
