"""Single-layer K-means features (Coates, Lee & Ng 2011): Table 1's "1 Layer K-means" row.

The recipe, as the harness implements it (the paper only quotes the result):
1. `n_patches` random `patch` x `patch` patches from the training images; each patch
   normalised for brightness and contrast (mean 0, divided by sqrt(var + 10) on 0..255 values);
   ZCA whitening (epsilon 0.1) fitted on them.
2. K-means (`n_centroids`, Lloyd iterations from a seeded random sample of patches).
3. Every image: all patches at stride 1, normalised and whitened the same way, encoded with the
   "triangle" activation f_k = max(0, mean_j(d_j) - d_k) (d = distances to the centroids), then
   sum-pooled over the 4 quadrants: 4 * n_centroids features per image.
Batched in torch, on the GPU when given one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import Tensor

from repro.config import Section
from repro.errors import ReproError
from repro.utils.progress import progress


class KMeansSettings(Section):
    """The recipe's sizes; also Table 1's `kmeans:` config section (one type for both)."""

    n_centroids: PositiveInt = 1600
    patch: PositiveInt = 6
    n_patches: PositiveInt = 400_000
    iterations: PositiveInt = 10
    batch_size: PositiveInt = 64
    seed: int = 0


def _patches(images: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) uint8 -> (B, P, C*patch*patch) float, every stride-1 patch."""
    x = images.float()
    cols = F.unfold(x, patch)  # (B, C*p*p, P)
    return cols.transpose(1, 2)


def _normalise(p: Tensor) -> Tensor:
    mean = p.mean(-1, keepdim=True)
    return (p - mean) / (p.var(-1, keepdim=True) + 10.0).sqrt()


class KMeansFeatures:
    def __init__(self, settings: KMeansSettings, device: torch.device):
        self.s, self.device = settings, device

    def fit(self, images: Tensor) -> "KMeansFeatures":
        s = self.s
        if s.n_centroids < 2 or s.n_patches < s.n_centroids:
            raise ReproError(f"kmeans needs n_patches ({s.n_patches}) >= n_centroids "
                             f"({s.n_centroids}) >= 2")
        g = torch.Generator().manual_seed(s.seed)
        n, _, h, w = images.shape
        per = h - s.patch + 1
        idx = torch.randint(0, n, (s.n_patches,), generator=g)
        ys = torch.randint(0, per, (s.n_patches,), generator=g)
        xs = torch.randint(0, per, (s.n_patches,), generator=g)
        rows = [images[i, :, y:y + s.patch, x:x + s.patch].reshape(-1)
                for i, y, x in zip(idx.tolist(), ys.tolist(), xs.tolist())]
        P = _normalise(torch.stack(rows).double()).to(self.device)  # (n_patches, d)
        self.mean = P.mean(0)
        cov = torch.cov((P - self.mean).T)
        ev, V = torch.linalg.eigh(cov)
        self.zca = (V @ torch.diag(1.0 / (ev.clamp_min(0) + 0.1).sqrt()) @ V.T).float()
        self.mean = self.mean.float()
        Z = (P.float() - self.mean) @ self.zca
        C = Z[torch.randperm(len(Z), generator=g)[:s.n_centroids].to(self.device)].clone()
        for _ in progress(range(s.iterations), desc="k-means", unit="iter"):
            assign = self._nearest(Z, C)
            sums = torch.zeros_like(C).index_add_(0, assign, Z)
            counts = torch.bincount(assign, minlength=len(C)).float()
            C = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], C)
        self.centroids = C
        return self

    @staticmethod
    def _nearest(Z: Tensor, C: Tensor, block: int = 65536) -> Tensor:
        out = []
        c2 = (C * C).sum(1)
        for i in range(0, len(Z), block):
            z = Z[i:i + block]
            out.append((c2 - 2 * z @ C.T).argmin(1))
        return torch.cat(out)

    @property
    def dim(self) -> int:
        return 4 * self.s.n_centroids

    @torch.no_grad()
    def transform(self, images: Tensor, desc: str = "k-means features") -> np.ndarray:
        """(N, C, H, W) uint8 -> (N, 4 * n_centroids) float32."""
        s = self.s
        per = images.shape[-1] - s.patch + 1
        half = per // 2
        c2 = (self.centroids * self.centroids).sum(1)
        out = np.empty((len(images), self.dim), dtype=np.float32)
        bar = progress(total=len(images), desc=desc, unit="img")
        for i in range(0, len(images), s.batch_size):
            P = _patches(images[i:i + s.batch_size].to(self.device), s.patch)  # (B, P, d)
            Z = (_normalise(P) - self.mean) @ self.zca
            d = ((Z * Z).sum(-1, keepdim=True) - 2 * Z @ self.centroids.T + c2).clamp_min(0).sqrt()
            f = (d.mean(-1, keepdim=True) - d).clamp_min(0)  # (B, P, k) triangle activation
            f = f.reshape(len(P), per, per, -1)
            pooled = [f[:, :half, :half], f[:, :half, half:], f[:, half:, :half], f[:, half:, half:]]
            out[i:i + len(P)] = torch.cat([q.sum((1, 2)) for q in pooled], 1).cpu().numpy()
            bar.update(len(P))
        bar.close()
        return out
