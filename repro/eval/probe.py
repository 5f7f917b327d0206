"""Linear probes on frozen representations (Tables 1 and 2): labelled draws, features, SVM runs.

The paper's protocol, as the pieces a table stage composes:
- `per_class_draw`: a random labelled subset with the same count of every class ("400 per
  class" in Table 1, "1000 labels = 100 per class" in Table 2).
- `split_off`: a seeded validation split carved from a training split (Table 2's 10,000
  images when the dataset has no validation split of its own).
- `representation`: images -> feature matrices for several image sets at once, either the
  discriminator's pooled features (BN statistics inferred once on training images, as the
  authors did, or the checkpoint's running averages) or raw pixels (the harness's baseline).
- `svm_draws`: fit the evaluator (a registered name, repro.eval.evaluators; the L2-SVM by
  default) on each of several draws and score it, with the evaluation features moved to the
  solver's device once for all draws; `choose_C` picks a regularised evaluator's C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import PositiveInt
from torch import Tensor, nn

from repro.config import Section
from repro.data.base import to_float
from repro.errors import ReproError
from repro.eval.features import extract_features, infer_bn_stats
from repro.eval.svm import to_tensor
from repro.registry import EVALUATORS
from repro.utils.progress import progress

BnMode = Literal["inferred", "running"]


def draw_rng(seed: int, draw: int) -> np.random.Generator:
    """The generator of one labelled draw: draws differ by index, runs repeat by seed."""
    return np.random.default_rng([seed, draw])


def per_class_draw(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `per_class` examples of every class, drawn without replacement."""
    labels = np.asarray(labels)
    picks = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) < per_class:
            raise ReproError(f"class {k} has {len(members)} labelled examples, fewer than the "
                             f"{per_class} per class asked; lower the per-class count or add data")
        picks.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picks))


def split_off(n: int, n_valid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, valid): sorted indices of a seeded random split of range(n)."""
    if not 0 < n_valid < n:
        raise ReproError(f"cannot split {n_valid} validation images off {n}; "
                         "n_valid must be between 1 and the split size - 1")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


class FeatureSettings(Section):
    """How features are extracted; also the tables' `features:` config section (one type)."""

    # inferred: BN statistics set once from the labelled set's training images (the authors'
    # recipe); running: the checkpoint's own running averages from GAN training.
    bn: BnMode = "inferred"
    bn_batch: PositiveInt = 128
    max_bn_images: PositiveInt | None = None  # BN inferred on at most this many (None: all)
    batch_size: PositiveInt = 256
    dtype: Literal["float16", "float32"] = "float16"
    # Host bytes one feature matrix may take in memory; larger ones go to .npy memmaps.
    max_bytes: PositiveInt = 2 << 30


def raw_pixels(images: Tensor, pixel_range: str = "tanh") -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, C*H*W) float32 in the model's pixel range."""
    return to_float(images, pixel_range).flatten(1).numpy().astype(np.float32, copy=False)


def representation(D: nn.Module | None, pixel_range: str, image_sets: dict[str, Tensor], *,
                   feature_dim: int = 0, bn_images: Tensor | None, settings: FeatureSettings, device: torch.device,
                   cache_dir: Path | None = None, label: str = "") -> dict[str, np.ndarray]:
    """Features of each image set: D's pooled features (D given) or raw pixels (D None).

    With `settings.bn == "inferred"`, D's BN statistics are first set from `bn_images`
    (the authors' recipe; see repro.eval.features). Matrices larger than
    `settings.max_bytes` are written to `cache_dir/<label>_<set>.npy` and memory-mapped.
    """
    if D is None:
        return {name: raw_pixels(images, pixel_range) for name, images in image_sets.items()}
    if settings.bn == "inferred":
        if bn_images is None or len(bn_images) == 0:
            raise ReproError("bn: inferred needs training images to infer BN statistics from")
        infer_bn_stats(D, bn_images, batch_size=settings.bn_batch, pixel_range=pixel_range,
                       device=device)
    elif settings.bn != "running":
        raise ReproError(f"unknown bn mode {settings.bn!r}; valid names: inferred, running")
    dtype = np.dtype(settings.dtype)
    out = {}
    for name, images in image_sets.items():
        path = None
        if len(images) * feature_dim * dtype.itemsize > settings.max_bytes:
            if cache_dir is None:
                raise ReproError(f"{label} {name}: {len(images)} x {feature_dim} features exceed "
                                 f"max_bytes {settings.max_bytes}; give a cache_dir to stream them")
            path = cache_dir / f"{label}_{name}.npy"
        out[name] = extract_features(D, images, batch_size=settings.batch_size,
                                     pixel_range=pixel_range, device=device, out_path=path,
                                     dtype=dtype, desc=f"features {label} {name}".strip())
    return out


def _draw_fits(X_pool: Any, y_pool: np.ndarray, X_eval: Any, y_eval: np.ndarray, *,
               per_class: int | None, draws: int, Cs: list[float | None], solver: str,
               seed: int, device: torch.device, desc: str, options: dict[str, Any],
               evaluator: str) -> list[list[float]]:
    """Accuracy of one classifier per (C, draw): [[acc of draw 0, 1, ...] for each C of Cs].

    Draw-major: a draw's rows go to the solver's device once and every C is fitted on that
    same tensor, so the torch solver's N x N Gram matrix (cached per tensor by
    repro.eval.svm_kernel.gram) is computed once per draw, not once per (draw, C). A Gram
    matrix of the whole pool, sliced per draw, would cost pool^2 x D instead of
    draws x n_draw^2 x D: more for every protocol here (Table 2: 63k^2 vs 100 x 1000^2).
    """
    make = EVALUATORS.get(evaluator).make
    options = dict(options, solver=solver)
    dtype = options.get("dtype", torch.float32)
    if solver == "torch":
        options["device"] = device
        X_eval = to_tensor(X_eval, device, dtype)
    out: list[list[float]] = [[] for _ in Cs]
    # one tick per fit, not per draw: choosing C on the whole pool is one draw of len(Cs) long fits
    bar = progress(total=draws * len(Cs), desc=desc, unit="fit", disable=draws * len(Cs) == 1)
    for d in range(draws):
        idx = (np.arange(len(y_pool)) if per_class is None
               else per_class_draw(y_pool, per_class, draw_rng(seed, d)))
        # the whole pool: no copy (a paper-sized memmap would be read into memory twice)
        X_draw = np.asarray(X_pool if per_class is None else X_pool[idx])
        if solver == "torch":
            X_draw = to_tensor(X_draw, device, dtype)
        for i, c in enumerate(Cs):
            clf = make(C=c, **options).fit(X_draw, y_pool[idx])
            out[i].append(clf.score(X_eval, y_eval))
            bar.update(1)
    bar.close()
    return out


def svm_draws(X_pool: Any, y_pool: np.ndarray, X_eval: Any, y_eval: np.ndarray, *,
              per_class: int | None, draws: int, C: float, solver: str, seed: int,
              device: torch.device, desc: str = "svm draws", evaluator: str = "l2svm",
              **svm_options: Any) -> list[float]:
    """Accuracy (in [0, 1]) on (X_eval, y_eval) of one classifier per labelled draw from the
    pool (C None for an evaluator that has none).

    per_class None: one fit on the whole pool (`draws` must be 1).
    """
    if per_class is None and draws != 1:
        raise ReproError("svm_draws: a fit on the whole pool is one draw; set draws to 1")
    return _draw_fits(X_pool, y_pool, X_eval, y_eval, per_class=per_class, draws=draws, Cs=[C],
                      solver=solver, seed=seed, device=device, desc=desc,
                      options=svm_options, evaluator=evaluator)[0]


def choose_C(X_pool: Any, y_pool: np.ndarray, X_val: Any, y_val: np.ndarray, *,
             grid: list[float], per_class: int | None, draws: int, solver: str, seed: int,
             device: torch.device, evaluator: str = "l2svm", **svm_options: Any) -> dict:
    """The C of `grid` with the best mean validation accuracy over `draws` labelled draws
    (the authors' SVHN selection; per_class None: one fit on the whole pool per C). An
    evaluator without a C (not `regularised`) has nothing to choose: best_C None."""
    if not EVALUATORS.get(evaluator).regularised:
        return {"best_C": None, "val_acc": {}}
    if not grid:
        raise ReproError("choosing C needs a non-empty grid of C values")
    # The same draws for every C (seed fixed), so C is compared on equal footing.
    accs = _draw_fits(X_pool, y_pool, X_val, y_val, per_class=per_class, draws=draws, Cs=grid,
                      solver=solver, seed=seed, device=device, desc="select C",
                      options=svm_options, evaluator=evaluator)
    scores: dict[str, list[float]] = {}
    for c, a in zip(grid, accs):
        scores[str(c)] = a
    best = max(grid, key=lambda c: (float(np.mean(scores[str(c)])), -grid.index(c)))
    return {"best_C": best, "val_acc": scores}
