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
from repro.stages.common import Stage, metric_cell, stage_main
from repro.stages.rows import FinishedRows, fingerprint, stage_key
from repro.stages.probing import (KMEANS, RAW, FeatureConfig, KMeansConfig, SvmConfig,
                                  feature_cache, features, load_split, sources)
from repro.utils.io import write_metrics

# Rows with a published counterpart; others (raw pixels) are the harness's own baselines.
PUBLISHED_ROWS = ("dcgan_l2svm", "kmeans_1layer")
REPRESENTATIONS = {RAW: "harness baseline: raw pixels + the same L2-SVM",
                   KMEANS: "single-layer K-means features (Coates et al.), rerun by the harness"}
PAPER = {"n_train": 50_000, "n_test": 10_000, "per_class": 400, "draws": 10}


class Table1Config(Section):
    dataset: str = "cifar10"
    train_split: str = "train"
    test_split: str = "test"
    max_train: PositiveInt | None = None
    max_test: PositiveInt | None = None
    n_valid: PositiveInt = 5_000  # carved off train for choosing C (the harness's choice)
    per_class: PositiveInt = 400
    draws: PositiveInt = 10
    select_draws: PositiveInt = 3
    seed: int = 0
    image_size: PositiveInt = 32
    # How images of another size are fitted to the 32x32 RGB models: "resize" (bilinear) or
    # "pad" (zero padding); either is a deviation named on every cell (repro.data.fit).
    fit: Fit = "resize"
    # row id -> checkpoint folder under the checkpoints dir, "raw_pixels" or "kmeans"
    models: dict[str, str] = Field(default_factory=lambda: {
        "dcgan_l2svm": "imagenet32", "kmeans_1layer": KMEANS, "raw_pixels": RAW})
    # row id -> the variant its checkpoints must hold (checkpoint rows only)
    variants: dict[str, str] = Field(default_factory=lambda: {"dcgan_l2svm": "imagenet32"})
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    kmeans: KMeansConfig = Field(default_factory=KMeansConfig)
    svm: SvmConfig = Field(default_factory=lambda: SvmConfig(C_grid=[1e-4, 1e-3, 1e-2, 1e-1]))


def _dry(cfg: Table1Config) -> Table1Config:
    return cfg.model_copy(update={"per_class": min(cfg.per_class, 3), "draws": 2,
                                  "kmeans": cfg.kmeans.model_copy(update={
                                      "n_centroids": 16, "n_patches": 2000, "iterations": 2}),
                                  "select_draws": 1, "n_valid": min(cfg.n_valid, 64),
                                  "svm": cfg.svm.model_copy(update={"C_grid": cfg.svm.C_grid[:2]})})


def run(checkpoints: Path, metrics_path: Path, provenance_dir: Path) -> None:
    table1(Stage.open("table1", Table1Config, "table1"), checkpoints, metrics_path, provenance_dir)


def table1(stage: Stage, checkpoints: Path, metrics_path: Path, provenance_dir: Path) -> None:
    cfg: Table1Config = stage.section
    if stage.dry_run:
        cfg = _dry(cfg)
    train = load_split(stage, cfg.dataset, cfg.train_split, cfg.max_train, cfg.image_size, 3, cfg.fit)
    test = load_split(stage, cfg.dataset, cfg.test_split, cfg.max_test, cfg.image_size, 3, cfg.fit)
    images = {"train": train.images, "test": test.images}
    y_train, y_test = train.labels.numpy(), test.labels.numpy()
    rest, val = split_off(len(train), cfg.n_valid, cfg.seed)
    real = train.real and test.real and not stage.dry_run
    paper_sizes = (cfg.dataset == "cifar10" and len(train) == PAPER["n_train"]
                   and len(test) == PAPER["n_test"] and cfg.per_class == PAPER["per_class"]
                   and cfg.draws == PAPER["draws"])
    deviations = stage.deviations()
    if not real:
        deviations.append(f"not CIFAR-10: {cfg.dataset} ({train.source})")
    elif not paper_sizes:
        deviations.append(f"{len(train)} train / {len(test)} test images, {cfg.per_class} per "
                          f"class x {cfg.draws} draws (paper: 50,000 / 10,000, 400 x 10)")
    deviations.append(f"C chosen by the harness on {len(val)} validation images carved off the "
                      "training set (the paper does not say how C was chosen)")
    base = stage.protocol(dataset=cfg.dataset, train_source=train.source, test_source=test.source,
                          n_train=len(train), n_test=len(test), solver=cfg.svm.solver,
                          bn=cfg.features.bn, C_grid=list(cfg.svm.C_grid))
    runs: dict[str, dict[str, list]] = {}
    timings: dict[str, float] = {}
    facts: dict[str, dict] = {}
    done = FinishedRows(metrics_path, stage_key(stage, cfg, fingerprint(
        train.images, train.labels, test.images, test.labels)), "table1")
    with feature_cache(stage) as cache:
        for src in sources(checkpoints, cfg.models, cfg.variants, "table1"):
            rec = done.run(f"{src.row}/{src.path.name if src.path else src.train_name}",
                           fingerprint(src.path), lambda src=src: _probe_row(
                               src, cfg, stage, images, (y_train, y_test), (rest, val), Path(cache)))
            r = runs.setdefault(src.row, {"acc": [], "acc@400pc": [], "seeds": []})
            r["acc"].append(rec["acc"])
            r["acc@400pc"].append(rec["acc@400pc"])
            if rec["seed"] is not None:
                r["seeds"].append(rec["seed"])
            facts.setdefault(src.row, {
                "feature_dim": rec["feature_dim"], "widest_layer": rec["widest_layer"],
                "pretraining_data": rec["data_source"], "checkpoint_source": rec["checkpoint_source"],
                "C": [], "ckpt": rec["ckpt"]})
            facts[src.row].setdefault("val_acc_by_C", []).append(rec["val_acc_by_C"])
            facts[src.row]["C"].append(rec["C"])
            timings[f"{src.row}/{src.path.name if src.path else RAW}"] = rec["seconds"]
    metrics = {}
    for row, r in runs.items():
        info = facts[row]
        ckpt = info.pop("ckpt")
        selection = info.pop("val_acc_by_C")
        published = row in PUBLISHED_ROWS
        pre = info["pretraining_data"]
        devs = list(deviations) + list(ckpt.get("deviations", []))
        if row == "dcgan_l2svm" and "imagenet" not in pre.lower():
            devs.append(f"pretrained on {pre}, not Imagenet-1k")
        if row == "kmeans_1layer":
            devs.append(f"K-means recipe and sizes are the harness's ({cfg.kmeans.n_centroids} "
                        f"centroids, {cfg.kmeans.patch}x{cfg.kmeans.patch} patches); the paper "
                        "quotes this row from Coates et al.")
        ok = (published and stage.profile == "paper" and real and paper_sizes
              and not ckpt.get("dry_run")
              and ("imagenet" in pre.lower() if row == "dcgan_l2svm" else True))
        protocol = {**base, **info, "representation": REPRESENTATIONS.get(
            cfg.models[row], "imagenet32 D features (trained by this harness)")}
        flat = [a for per_run in r["acc@400pc"] for a in per_run]
        metrics[f"table1/{row}/acc"] = metric_cell(
            r["acc"], seeds=r["seeds"], comparable=ok, protocol=protocol, deviations=devs,
            compares_to=f"table1/{row}/acc" if published else None, n_labels=len(train),
            val_acc_by_C=selection)
        metrics[f"table1/{row}/acc@400pc"] = metric_cell(
            flat, seeds=r["seeds"], comparable=ok, protocol=protocol, deviations=devs,
            compares_to=f"table1/{row}/acc@400pc" if published else None,
            n_labels=cfg.per_class * len(np.unique(y_train)), n_draws=cfg.draws,
            val_acc_by_C=selection)
        # The paper's "max # of features units": the widest D layer; K-means: its centroids.
        units = info["widest_layer"] if row != "kmeans_1layer" else cfg.kmeans.n_centroids
        metrics[f"table1/{row}/max_features"] = metric_cell(
            [units], seeds=r["seeds"], comparable=published, unit="units",
            protocol=protocol, deviations=[],
            compares_to=f"table1/{row}/max_features" if published else None)
    write_metrics(metrics_path, metrics)
    done.finish()
    stage.write_provenance(provenance_dir, seconds_per_row=timings, reused_rows=done.reused,
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
            "ckpt": {k: ckpt[k] for k in ("deviations", "dry_run") if k in ckpt},
            "val_acc_by_C": {"acc": sel_all["val_acc"], "acc@400pc": sel_400["val_acc"]},
            "C": {"acc": sel_all["best_C"], "acc@400pc": sel_400["best_C"]},
            "seconds": round(time.perf_counter() - t0, 2)}


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, ['checkpoints', 'metrics', 'provenance'], argv)


if __name__ == "__main__":
    main()
