"""What the tables' runner (repro.protocols.runner) shares: typed sub-sections, data and
checkpoint loading, the sources of a table's rows (checkpoint folders, baselines, a user's
model), the row loop, and the representations (checkpointed discriminators, raw pixels,
K-means features, or any module `python -m repro.probe` was given) a linear probe runs on."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import PositiveFloat

from repro.config import Section
from repro.data.base import ImageSet
from repro.data.fit import Fit
from repro.data.loading import load_dataset
from repro.errors import ReproError
from repro.eval.kmeans import KMeansFeatures, KMeansSettings
from repro.eval.probe import FeatureSettings, representation
from repro.models.checkpoint import build_from_checkpoint
from repro.published.protocol import AUTHORS_C_GRID, CHECKPOINT, KMEANS, RAW, Protocol
from repro.protocols.rows import FinishedRows, fingerprint
from repro.context import Stage, not_run_cell
from repro.utils.io import read_json

# a table's `features:` and `kmeans:` sections are the extraction's and recipe's settings types
FeatureConfig = FeatureSettings
KMeansConfig = KMeansSettings


class SvmConfig(Section):
    solver: Literal["torch", "liblinear"] = "torch"  # liblinear = scikit-learn's LinearSVC
    C_grid: list[PositiveFloat] = list(AUTHORS_C_GRID)  # a table's section sets its protocol's
    standardize: bool = False
    tol: PositiveFloat = 1e-4

    def options(self) -> dict:
        return {"standardize": self.standardize, "tol": self.tol}


def load_split(stage: Stage, dataset: str, split: str, max_images: int | None, size: int,
               channels: int, how: Fit, seed: int = 0) -> ImageSet:
    """A labelled split fitted to the probed model's input (`how`: the section's `fit`); the
    fit's deviations join `stage.deviations()`. `seed` draws the `max_images` subset (the
    table's protocol seed: the drift gate's seed sweep then varies which images a capped run
    uses, so even a deterministic all-images fit has a measured spread)."""
    d = stage.params.data
    data = load_dataset(dataset, split, root=d.root, download=d.download, search=d.search,
                        max_images=max_images, seed=seed, dry_run=stage.dry_run)
    if data.labels is None:
        raise ReproError(f"{dataset} {split} has no labels; a linear probe needs a labelled dataset")
    return stage.fit(data, size, channels, how)


@dataclass
class Source:
    """One source of a table's rows: a checkpoint (a discriminator to probe, a generator to
    sample), a baseline (raw pixels or K-means: path None), or a model a user gave
    `python -m repro.probe` (`module`: a repro.probe.Probed feature extractor, or a
    generator's (variant, G, facts))."""
    row: str
    train_name: str
    path: Path | None
    missing: str | None = None  # why the row has no checkpoint (e.g. the authors' files absent)
    expect_variant: str | None = None  # the variant the checkpoint must hold
    module: Any = None  # a user's model that is not a checkpoint (see above)

    @property
    def kind(self) -> str:
        return self.train_name if self.train_name in (RAW, KMEANS) else CHECKPOINT

    @property
    def key(self) -> str:
        """The row's id among finished rows (repro.protocols.rows)."""
        return f"{self.row}/{self.path.name if self.path else self.train_name}"


def rows_of(protocol: Protocol) -> tuple[dict[str, str], dict[str, str]]:
    """The protocol's probe rows as a section's defaults: (row -> checkpoint folder or
    baseline name, row -> the variant its checkpoints must hold)."""
    probe = {r: row for r, row in protocol.rows.items() if row.kind in (CHECKPOINT, RAW, KMEANS)}
    return ({r: row.source or row.kind for r, row in probe.items()},
            {r: row.variant for r, row in probe.items() if row.variant})


def sources(checkpoints: Path, rows: dict[str, str], variants: dict[str, str],
            section: str) -> list[Source]:
    """row -> checkpoint folder name under `checkpoints` (or "raw_pixels") -> Sources.

    A folder may hold seed<k>.pt files (our training runs) or one authors.pt (a port), or a
    MISSING.json written by a port stage that found nothing (the row is then reported not run,
    with the reason, in every table). `variants` (row -> variant) says what each row's
    checkpoints must hold.
    """
    out = []
    for row, name in rows.items():
        if name in (RAW, KMEANS):
            out.append(Source(row, name, None))
            continue
        if row not in variants:
            raise ReproError(f"{section}.variants has no entry for row {row!r}; add the variant "
                             f"its checkpoints in {name}/ must hold")
        folder = checkpoints / name
        paths = sorted(folder.glob("seed*.pt")) + sorted(folder.glob("authors.pt"))
        if paths:
            out += [Source(row, name, p, expect_variant=variants[row]) for p in paths]
        elif (folder / "MISSING.json").is_file():
            out.append(Source(row, name, None, missing=read_json(folder / "MISSING.json")["reason"]))
        else:
            raise ReproError(f"no checkpoints in {folder}; run the stage that makes them first "
                             f"(dvc repro train@{name}, or port_svhn for authors_svhn)")
    return out


@dataclass
class Features:
    sets: dict[str, np.ndarray]
    seed: int | None
    data_source: str  # what the representation was trained on
    checkpoint: dict | None
    widest_layer: int  # max # of feature units (widest D layer; pixels: C*H*W; K-means: centroids)
    feature_dim: int


def features(source: Source, images: dict[str, torch.Tensor], cfg: FeatureConfig,
             device: torch.device, expect_size: int, cache: Path,
             kmeans: KMeansConfig | None = None) -> Features:
    if source.missing:
        raise ReproError(f"row {source.row!r} has no input ({source.missing}); a missing row is "
                         "reported not run, never probed")
    if source.module is not None:
        return _module_features(source, images, cfg, device, cache)
    if source.train_name == KMEANS:
        km = KMeansFeatures(kmeans or KMeansSettings(), device).fit(images["train"])
        sets = {name: km.transform(x, desc=f"k-means features {name}") for name, x in images.items()}
        # Coates et al. standardise the pooled features (training mean and std) before the SVM;
        # unscaled sums over ~170 positions also make the SVM's Newton systems ill-conditioned.
        mean, std = sets["train"].mean(0), sets["train"].std(0) + 1e-2
        sets = {name: (f - mean) / std for name, f in sets.items()}
        # its "feature units" are the centroids (the paper's 4,800 for this row), not 4 x that
        return Features(sets, None, "the labelled set's training images (unsupervised K-means)",
                        None, km.s.n_centroids, km.dim)
    if source.train_name == RAW:
        sets = representation(None, "tanh", images, bn_images=None, settings=cfg,
                              device=device)
        dim = next(iter(sets.values())).shape[1]
        return Features(sets, None, "none (raw pixels)", None, dim, dim)
    if source.path is None:  # never raw pixels in place of a missing checkpoint
        raise ReproError(f"row {source.row!r} ({source.train_name}) has no checkpoint file; "
                         "run the stage that makes it first")
    variant, _, D, ckpt = build_from_checkpoint(source.path, source.expect_variant, device)
    spec = variant.spec
    if not spec.feature_dim or spec.image_size != expect_size:
        raise ReproError(f"{source.path} holds {spec.name}, which gives no {expect_size}x"
                         f"{expect_size} feature vector; fix the models of this table's section")
    bn_images = images["train"][:cfg.max_bn_images] if cfg.max_bn_images else images["train"]
    sets = representation(D, spec.pixel_range, images, feature_dim=spec.feature_dim,
                          bn_images=bn_images, settings=cfg, device=device,
                          cache_dir=cache, label=f"{source.row}_{source.path.stem}")
    with torch.no_grad():
        probe = torch.zeros(2, spec.channels, spec.image_size, spec.image_size, device=device)
        widest = max(t.shape[1] for t in D.layer_outputs(probe))
    return Features(sets, ckpt.get("seed"), ckpt.get("data_source") or "unknown", ckpt, widest,
                    spec.feature_dim)


def _module_features(source: Source, images: dict[str, torch.Tensor], cfg: FeatureConfig,
                     device: torch.device, cache: Path) -> Features:
    """Features of a module given to `python -m repro.probe` (not a harness checkpoint)."""
    m = source.module
    bn_images = images["train"][:cfg.max_bn_images] if cfg.max_bn_images else images["train"]
    sets = representation(m, m.pixel_range, images, feature_dim=m.feature_dim,
                          bn_images=bn_images if cfg.bn == "inferred" else None,
                          settings=cfg, device=device, cache_dir=cache,
                          label=f"{source.row}_probe")
    return Features(sets, None, m.data_source, None, m.widest_layer, m.feature_dim)


def run_rows(stage: Stage, srcs: list[Source], done: FinishedRows,
             compute: Callable[[Source, Path], dict]):
    """The row loop of every table (one contract): `compute(src, cache)` for each source
    with an input, reusing rows finished by an earlier run; a source without one is collected
    with its reason, never probed. -> (row -> [(source, record)], row -> reason, timings)."""
    by_row: dict[str, list[tuple[Source, dict]]] = {}
    missing: dict[str, str] = {}
    timings: dict[str, float] = {}
    with feature_cache(stage) as cache:
        for src in srcs:
            if src.missing:
                missing[src.row] = src.missing
                continue
            rec = done.run(src.key, fingerprint(src.path),
                           lambda src=src: compute(src, Path(cache)))
            by_row.setdefault(src.row, []).append((src, rec))
            timings[src.key] = rec["seconds"]
    return by_row, missing, timings


def not_run_cells(protocol: Protocol, missing: dict[str, str], models: dict[str, str],
                  base: dict, prefix: str, columns: dict[str, str]) -> dict[str, dict]:
    """Each missing row's cells (`columns`: column -> unit), with the reason, compared with
    the published row it stands for."""
    out = {}
    for row, reason in missing.items():
        declared = protocol.row(row, models.get(row, row))
        for col, unit in columns.items():
            out[f"{prefix}/{row}/{col}"] = not_run_cell(
                reason, unit=unit, protocol={**base, "representation": declared.what},
                compares_to=f"{protocol.table}/{declared.published}/{col}" if declared.published
                else None)
        print(f"{protocol.table}: row {row} not run: {reason}")
    return out


def feature_cache(stage: Stage) -> tempfile.TemporaryDirectory:
    """A scratch folder (under $TMPDIR) for memmapped feature matrices, removed afterwards."""
    return tempfile.TemporaryDirectory(prefix=f"{stage.name}_features_")
