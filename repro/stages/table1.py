"""Stage: Table 1, CIFAR-10 with discriminator features + L2-SVM, and a raw-pixel baseline.

Protocol (../shared/reference/protocol.md, Table 1): the imagenet32 D (pretrained on
Imagenet-1k in the paper), every conv layer max-pooled to 4x4 and concatenated (28,672-d),
a regularised linear L2-SVM.
- "Accuracy": one SVM on all training images, test accuracy.
- "Accuracy (400 per class)": `draws` random draws of 400 labelled images per class, mean and
  std of the test accuracy.
C is not given by the paper; the harness selects it from `svm.C_grid` on a validation split
carved off the training images (`n_valid`, seeded), separately for the two columns (all
remaining images, and `select_draws` draws of 400 per class), then refits on the whole
training set. That choice is recorded in every cell.

Each finished row (one representation, one checkpoint) is kept in
`<metrics>.partial.json` beside the metrics file (not a declared output); a rerun with the same
config and inputs reuses those rows, and the file is removed once the metrics file is written
(repro.stages.rows).

    python -m repro.stages.table1 --checkpoints results/checkpoints \
        --metrics results/metrics/table1_cifar10.json --provenance results/provenance
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydantic import Field, PositiveInt

from repro.config import Section
from repro.data.fit import Fit
from repro.errors import cli_errors
from repro.eval.probe import choose_C, split_off, svm_draws
from repro.published.protocol import KMEANS, TABLE1, comparable, diff_lines
from repro.stages.common import Stage, metric_cell, stage_main
from repro.stages.rows import FinishedRows, fingerprint, stage_key
from repro.stages.probing import (FeatureConfig, KMeansConfig, Source, SvmConfig, features,
                                  load_split, not_run_cells, probe_rows, rows_of, sources)

P = TABLE1  # the paper's protocol of this table (repro.published.protocol): the defaults below
_MODELS, _VARIANTS = rows_of(P)


class Table1Config(Section):
    dataset: str = P.paper("dataset")
    train_split: str = "train"
    test_split: str = "test"
    max_train: PositiveInt | None = None
    max_test: PositiveInt | None = None
    n_valid: PositiveInt = P.paper("n_valid")  # carved off train for choosing C (the harness's choice)
    per_class: PositiveInt = P.paper("per_class")
    draws: PositiveInt = P.paper("draws")
    select_draws: PositiveInt = P.paper("select_draws")
    seed: int = 0
    image_size: PositiveInt = 32
    # How images of another size are fitted to the 32x32 RGB models: "resize" (bilinear) or
    # "pad" (zero padding); either is a deviation named on every cell (repro.data.fit).
    fit: Fit = "resize"
    # row id -> checkpoint folder under the checkpoints dir, "raw_pixels" or "kmeans"
    models: dict[str, str] = Field(default_factory=lambda: dict(_MODELS))
    # row id -> the variant its checkpoints must hold (checkpoint rows only)
    variants: dict[str, str] = Field(default_factory=lambda: dict(_VARIANTS))
    features: FeatureConfig = Field(default_factory=lambda: FeatureConfig(bn=P.paper("bn")))
    kmeans: KMeansConfig = Field(default_factory=lambda: KMeansConfig(
        n_centroids=P.paper("kmeans_centroids")))
    svm: SvmConfig = Field(default_factory=lambda: SvmConfig(C_grid=list(P.paper("C_grid"))))


def _dry(cfg: Table1Config) -> Table1Config:
    return cfg.model_copy(update={"per_class": min(cfg.per_class, 3), "draws": 2,
                                  "kmeans": cfg.kmeans.model_copy(update={
                                      "n_centroids": 16, "n_patches": 2000, "iterations": 2}),
                                  "select_draws": 1, "n_valid": min(cfg.n_valid, 64),
                                  "svm": cfg.svm.model_copy(update={"C_grid": cfg.svm.C_grid[:2]})})


def effective_protocol(stage: Stage, cfg: Table1Config, *, real: bool, n_train: int,
                       n_test: int, n_valid: int) -> dict:
    """The run's value of every protocol field its rows share (repro.published.protocol);
    rows add their checkpoint's facts."""
    return {"real_data": real, "dry_run": stage.dry_run,
            "preprocessing": list(stage.data_deviations), "dataset": cfg.dataset,
            "n_train": n_train, "n_test": n_test, "per_class": cfg.per_class,
            "draws": cfg.draws, "n_valid": n_valid, "select_draws": cfg.select_draws,
            "C_grid": list(cfg.svm.C_grid), "bn": cfg.features.bn,
            "kmeans_centroids": cfg.kmeans.n_centroids}


def run(checkpoints: Path, metrics_path: Path, provenance_dir: Path) -> None:
    table1(Stage.open("table1", Table1Config, "table1"), checkpoints, metrics_path, provenance_dir)


def table1(stage: Stage, checkpoints: Path | None, metrics_path: Path, provenance_dir: Path,
           srcs: list[Source] | None = None, cell_prefix: str = "table1") -> None:
    """`srcs`: the representations to probe (default: the section's `models`, from
    `checkpoints`); `cell_prefix` names the cells (repro.probe writes its own rows)."""
    cfg: Table1Config = stage.section
    if stage.dry_run:
        cfg = _dry(cfg)
    train = load_split(stage, cfg.dataset, cfg.train_split, cfg.max_train, cfg.image_size, 3, cfg.fit)
    test = load_split(stage, cfg.dataset, cfg.test_split, cfg.max_test, cfg.image_size, 3, cfg.fit)
    images = {"train": train.images, "test": test.images}
    y_train, y_test = train.labels.numpy(), test.labels.numpy()
    rest, val = split_off(len(train), cfg.n_valid, cfg.seed)
    real = train.real and test.real and not stage.dry_run
    deviations = stage.deviations()
    if not real:
        deviations.append(f"not real data: {cfg.dataset} ({train.source})")
    deviations.append(f"C chosen by the harness on {len(val)} validation images carved off the "
                      "training set (the paper does not say how C was chosen)")
    effective = effective_protocol(stage, cfg, real=train.real and test.real,
                                   n_train=len(train), n_test=len(test), n_valid=len(val))
    base = stage.protocol(dataset=cfg.dataset, train_source=train.source, test_source=test.source,
                          n_train=len(train), n_test=len(test), solver=cfg.svm.solver,
                          bn=cfg.features.bn, C_grid=list(cfg.svm.C_grid), evaluator=P.evaluator)
    runs: dict[str, dict[str, list]] = {}
    facts: dict[str, dict] = {}
    done = FinishedRows(metrics_path, stage_key(stage, cfg, fingerprint(
        train.images, train.labels, test.images, test.labels)), "table1")
    if srcs is None:
        srcs = sources(checkpoints, cfg.models, cfg.variants, "table1")
    by_row, missing, timings = probe_rows(stage, srcs, done, lambda src, cache: _probe_row(
        src, cfg, stage, images, (y_train, y_test), (rest, val), cache))
    for src, rec in (sr for recs in by_row.values() for sr in recs):  # pooled by row
        r = runs.setdefault(src.row, {"acc": [], "acc@400pc": [], "seeds": []})
        r["acc"].append(rec["acc"])
        r["acc@400pc"].append(rec["acc@400pc"])
        if rec["seed"] is not None:
            r["seeds"].append(rec["seed"])
        facts.setdefault(src.row, {
            "feature_dim": rec["feature_dim"], "widest_layer": rec["widest_layer"],
            "pretraining_data": rec["data_source"], "checkpoint_source": rec["checkpoint_source"],
            "C": [], "ckpt": rec["ckpt"], "kind": src.kind, "source": src.train_name,
            "what": getattr(src.module, "what", None)})
        facts[src.row].setdefault("val_acc_by_C", []).append(rec["val_acc_by_C"])
        facts[src.row]["C"].append(rec["C"])
    metrics = {}
    for row, r in runs.items():
        info = facts[row]
        ckpt = info.pop("ckpt")
        selection = info.pop("val_acc_by_C")
        source = info.pop("source")
        spec = P.row(row, source)
        what = info.pop("what") or spec.what
        kind = info.pop("kind")
        published = spec.published is not None and cell_prefix == "table1"
        target = spec.published or row
        devs = list(deviations) + list(ckpt.get("deviations", []))
        if kind == KMEANS:
            devs.append(f"K-means recipe and sizes are the harness's ({cfg.kmeans.n_centroids} "
                        f"centroids, {cfg.kmeans.patch}x{cfg.kmeans.patch} patches); the paper "
                        "quotes this row from Coates et al.")
        run_facts = {**effective, "checkpoint_dry_run": bool(ckpt.get("dry_run")),
                     "pretraining_data": ckpt.get("dataset", info["pretraining_data"]),
                     "variant": ckpt.get("variant")}
        protocol = {**base, **info, "representation": what}
        moved = P.source_diff(row, source, cfg.variants.get(row))
        diffs = {col: P.diff(kind, col, run_facts) + moved for col in P.columns}
        flat = [a for per_run in r["acc@400pc"] for a in per_run]
        metrics[f"{cell_prefix}/{row}/acc"] = metric_cell(
            r["acc"], seeds=r["seeds"], comparable=comparable(published, diffs["acc"]),
            protocol=protocol, deviations=devs + diff_lines(diffs["acc"]),
            compares_to=f"table1/{target}/acc" if spec.published else None, n_labels=len(train),
            val_acc_by_C=selection, protocol_diff=diffs["acc"])
        metrics[f"{cell_prefix}/{row}/acc@400pc"] = metric_cell(
            flat, seeds=r["seeds"], comparable=comparable(published, diffs["acc@400pc"]),
            protocol=protocol, deviations=devs + diff_lines(diffs["acc@400pc"]),
            compares_to=f"table1/{target}/acc@400pc" if spec.published else None,
            n_labels=cfg.per_class * len(np.unique(y_train)), n_draws=cfg.draws,
            val_acc_by_C=selection, protocol_diff=diffs["acc@400pc"])
        # The paper's "max # of features units": the widest D layer; K-means: its centroids.
        units = info["widest_layer"] if kind != KMEANS else cfg.kmeans.n_centroids
        metrics[f"{cell_prefix}/{row}/max_features"] = metric_cell(
            [units], seeds=r["seeds"], comparable=comparable(published, diffs["max_features"]),
            unit="units", protocol=protocol, deviations=diff_lines(diffs["max_features"]),
            compares_to=f"table1/{target}/max_features" if spec.published else None,
            protocol_diff=diffs["max_features"])
    # reported as not run, with why, never silently dropped
    metrics.update(not_run_cells(P, missing, cfg.models, base, cell_prefix,
                                 {"acc": "%", "acc@400pc": "%", "max_features": "units"}))
    stage.write_metrics(metrics_path, metrics)
    done.finish()
    stage.write_provenance(provenance_dir, seconds_per_row=timings, reused_rows=done.reused,
                           missing_rows=missing,
                           seeds=sorted({s for c in metrics.values() for s in c["seeds"]}))


def _probe_row(src, cfg: Table1Config, stage: Stage, images: dict, y: tuple, split: tuple,
               cache: Path) -> dict:
    """One representation's features, C selection and test accuracies (a JSON record)."""
    t0 = time.perf_counter()
    (y_train, y_test), (rest, val) = y, split
    common = dict(solver=cfg.svm.solver, device=stage.device, **cfg.svm.options())
    f = features(src, images, cfg.features, stage.device, cfg.image_size, cache, kmeans=cfg.kmeans)
    X = f.sets
    Xr, yr = X["train"][rest], y_train[rest]
    Xv, yv = X["train"][val], y_train[val]
    grid = list(cfg.svm.C_grid)
    sel_all = choose_C(Xr, yr, Xv, yv, grid=grid, per_class=None, draws=1, seed=cfg.seed, **common)
    sel_400 = choose_C(Xr, yr, Xv, yv, grid=grid, per_class=cfg.per_class,
                       draws=cfg.select_draws, seed=cfg.seed, **common)
    acc_all = svm_draws(X["train"], y_train, X["test"], y_test, per_class=None, draws=1,
                        C=sel_all["best_C"], seed=cfg.seed, desc=f"{src.row} all", **common)
    acc_400 = svm_draws(X["train"], y_train, X["test"], y_test, per_class=cfg.per_class,
                        draws=cfg.draws, C=sel_400["best_C"], seed=cfg.seed + 1,
                        desc=f"{src.row} {cfg.per_class}/class", **common)
    ckpt = f.checkpoint or {}
    f.sets = {}  # the memmaps live in the cache folder
    return {"acc": 100 * acc_all[0], "acc@400pc": [100 * a for a in acc_400], "seed": f.seed,
            "feature_dim": f.feature_dim, "widest_layer": f.widest_layer,
            "data_source": f.data_source,
            "checkpoint_source": "harness" if f.checkpoint else "none",
            # what the cells read of the checkpoint (the rest holds tensors)
            "ckpt": {**{k: ckpt[k] for k in ("deviations", "dry_run") if k in ckpt},
                     **({"dataset": ckpt.get("config", {}).get("dataset"),
                         "variant": ckpt.get("variant")} if f.checkpoint else {})},
            "val_acc_by_C": {"acc": sel_all["val_acc"], "acc@400pc": sel_400["val_acc"]},
            "C": {"acc": sel_all["best_C"], "acc@400pc": sel_400["best_C"]},
            "seconds": round(time.perf_counter() - t0, 2)}


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, ['checkpoints', 'metrics', 'provenance'], argv)


if __name__ == "__main__":
    main()
