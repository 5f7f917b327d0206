"""Stage: Table 2, SVHN with 1000 labels: discriminator features + L2-SVM, and baselines.

The authors' protocol (../shared/reference/protocol.md, Table 2):
1. 10,000 validation images split off the training set; the labelled pool is the rest.
2. Features of D (svhn32: 7,168-d), BN statistics inferred once over training images.
3. C from the authors' grid by the best mean validation error over `select_draws` random
   draws of 100 labels per class (the same draws for every C).
4. `test_draws` new draws with that C: mean test error, std and 1.96 x std.
Rows: the authors' own checkpoint (port_svhn stage) and our retrained svhn32 (one cell each,
all seeds' draws pooled), and the harness's baselines: raw pixels + the same L2-SVM, 1-NN on
raw pixels of the same draws (the paper's "KNN" row), and the supervised CNN with D's
architecture on one draw's 1000 labels, hyperparameters by random search.

Each finished row (an SVM row's checkpoint, the KNN row, the supervised search) is kept in
`<metrics>.partial.json` beside the metrics file (not a declared output, so `dvc repro` leaves
it); a rerun with the same config and inputs reuses those rows, and the file is removed once
the metrics file is written (repro.stages.rows).

    python -m repro.stages.table2 --checkpoints results/checkpoints \
        --metrics results/metrics/table2_svhn.json --provenance results/provenance
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt

from repro.config import Section
from repro.data.fit import Fit
from repro.errors import cli_errors
from repro.eval.nearest import StreamingNN
from repro.eval.probe import choose_C, draw_rng, per_class_draw, split_off, svm_draws
from repro.eval.supervised import SearchSpace, random_search
from repro.published.protocol import (KNN, SUPERVISED, TABLE2, TABLE2_KNN, TABLE2_SUPERVISED,
                                      Protocol, comparable, diff_lines)
from repro.registry import MODELS
from repro.stages.common import Stage, metric_cell, stage_main
from repro.stages.rows import FinishedRows, fingerprint, stage_key
from repro.stages.probing import (FeatureConfig, Source, SvmConfig, features, load_split,
                                  not_run_cells, probe_rows, rows_of, sources)

P = TABLE2  # the paper's protocol of this table (repro.published.protocol): the defaults below
_MODELS, _VARIANTS = rows_of(P)


class SupervisedConfig(SearchSpace):
    """Table 2's supervised row: the search space (repro.eval.supervised) plus its budget."""

    trials: NonNegativeInt = P.paper("trials")  # 0: no supervised row
    seed: int = 0
    variant: str = "svhn32"  # D architecture to train from scratch


class Table2Config(Section):
    dataset: str = P.paper("dataset")
    train_split: str = "train"
    # A split of the dataset, or null: carve n_valid images off train_split (seeded).
    valid_split: str | None = "valid"
    n_valid: PositiveInt = P.paper("n_valid")
    test_split: str = "test"
    max_train: PositiveInt | None = None
    max_valid: PositiveInt | None = None
    max_test: PositiveInt | None = None
    per_class: PositiveInt = P.paper("per_class")
    select_draws: PositiveInt = P.paper("select_draws")
    test_draws: PositiveInt = P.paper("test_draws")
    seed: int = 0
    # row id -> checkpoint folder under the checkpoints dir, or "raw_pixels"
    models: dict[str, str] = Field(default_factory=lambda: dict(_MODELS))
    # row id -> the variant its checkpoints must hold (checkpoint rows only)
    variants: dict[str, str] = Field(default_factory=lambda: dict(_VARIANTS))
    knn: bool = True
    # How images of another size or channel count are fitted to the 32x32 RGB models:
    # "resize" (bilinear) or "pad" (zero padding, how the authors fed 28x28 MNIST to a 32x32
    # model); either is a deviation named on every cell (repro.data.fit).
    fit: Fit = "resize"
    features: FeatureConfig = Field(default_factory=lambda: FeatureConfig(bn=P.paper("bn")))
    svm: SvmConfig = Field(default_factory=lambda: SvmConfig(C_grid=list(P.paper("C_grid"))))
    supervised: SupervisedConfig = Field(default_factory=SupervisedConfig)


def _dry(cfg: Table2Config) -> Table2Config:
    return cfg.model_copy(update={
        "per_class": min(cfg.per_class, 3), "select_draws": 2, "test_draws": 2,
        "n_valid": min(cfg.n_valid, 64), "valid_split": None,
        "svm": cfg.svm.model_copy(update={"C_grid": cfg.svm.C_grid[:2]}),
        "supervised": cfg.supervised.model_copy(update={
            "trials": min(cfg.supervised.trials, 1), "epochs": [1], "batch_size": [8]})})


def _data(stage: Stage, cfg: Table2Config, size: int, channels: int):
    train = load_split(stage, cfg.dataset, cfg.train_split, cfg.max_train, size, channels, cfg.fit)
    test = load_split(stage, cfg.dataset, cfg.test_split, cfg.max_test, size, channels, cfg.fit)
    if cfg.valid_split:
        valid = load_split(stage, cfg.dataset, cfg.valid_split, cfg.max_valid, size, channels,
                           cfg.fit)
        pool = train
    else:
        rest, val = split_off(len(train), cfg.n_valid, cfg.seed)
        pool, valid = train.subset(torch.from_numpy(rest)), train.subset(torch.from_numpy(val))
    return pool, valid, test


def effective_protocol(stage: Stage, cfg: Table2Config, *, real: bool, n_valid: int) -> dict:
    """The run's value of every protocol field its rows share (repro.published.protocol);
    rows add their checkpoint's facts."""
    return {"real_data": real, "dry_run": stage.dry_run,
            "preprocessing": list(stage.data_deviations), "dataset": cfg.dataset,
            "n_valid": n_valid, "max_train": cfg.max_train, "max_test": cfg.max_test,
            "per_class": cfg.per_class, "select_draws": cfg.select_draws,
            "test_draws": cfg.test_draws, "C_grid": list(cfg.svm.C_grid),
            "bn": cfg.features.bn, "trials": cfg.supervised.trials, "checkpoint_dry_run": False}


def run(checkpoints: Path, metrics_path: Path, provenance_dir: Path) -> None:
    table2(Stage.open("table2", Table2Config, "table2"), checkpoints, metrics_path, provenance_dir)


def table2(stage: Stage, checkpoints: Path | None, metrics_path: Path, provenance_dir: Path,
           srcs: list[Source] | None = None, cell_prefix: str | None = None,
           input_shape: tuple[int, int] | None = None, protocol: Protocol = TABLE2) -> None:
    """`srcs`: the representations to probe (default: the section's `models`, from
    `checkpoints`); `cell_prefix` names the cells (repro.probe writes its own rows);
    `input_shape`: (size, channels) the images are fitted to (default: the supervised
    row's architecture, svhn32's 32x32 RGB); `protocol`: any table declared with Table 2's
    fields and columns (labelled draws, C by validation draws, test draws) runs here."""
    table = protocol.table
    cell_prefix = cell_prefix or table
    cfg: Table2Config = stage.section
    if stage.dry_run:
        cfg = _dry(cfg)
    spec = MODELS.get(cfg.supervised.variant).spec
    size, channels = input_shape or (spec.image_size, spec.channels)
    pool, valid, test = _data(stage, cfg, size, channels)
    images = {"train": pool.images, "valid": valid.images, "test": test.images}
    y = {"train": pool.labels.numpy(), "valid": valid.labels.numpy(), "test": test.labels.numpy()}
    real = pool.real and test.real and not stage.dry_run
    n_labels = cfg.per_class * len(np.unique(y["train"]))
    effective = effective_protocol(stage, cfg, real=pool.real and test.real, n_valid=len(valid))
    deviations = stage.deviations()
    if not real:
        deviations.append(f"not real data: {cfg.dataset} ({pool.source})")
    base = stage.protocol(dataset=cfg.dataset, n_pool=len(pool), n_valid=len(valid),
                          n_test=len(test), n_labels=n_labels, per_class=cfg.per_class,
                          test_source=test.source, solver=cfg.svm.solver, bn=cfg.features.bn,
                          evaluator=protocol.evaluator)
    judge = _Judge(protocol, effective, deviations, cell_prefix == table)
    metrics: dict[str, dict] = {}
    done = FinishedRows(metrics_path, stage_key(stage, cfg, fingerprint(
        pool.images, pool.labels, valid.images, valid.labels, test.images, test.labels)), table)
    if srcs is None:
        srcs = sources(checkpoints, cfg.models, cfg.variants, table)
    by_row, missing, timings = probe_rows(stage, srcs, done, lambda src, cache: _svm_row(
        src, cfg, stage, images, y, size, cache))
    for row, recs in by_row.items():
        metrics[f"{cell_prefix}/{row}/err@1000"] = _svm_cell(
            row, recs[-1][0], [rec for _, rec in recs], base, judge)
    # reported as not run, with why, never silently dropped
    metrics.update(not_run_cells(protocol, missing, cfg.models, base, cell_prefix,
                                 {"err@1000": "%"}))
    if cfg.knn:
        metrics[f"{cell_prefix}/knn/err@1000"] = done.run("knn", "", lambda: _knn_cell(
            cfg, pool, test, base, judge, stage.device))
    if cfg.supervised.trials:
        rec = done.run("supervised_cnn", "", lambda: _timed(lambda: _supervised_cells(
            cfg, pool, valid, test, stage, base, judge)))
        metrics.update({k.replace(f"{table}/", f"{cell_prefix}/", 1): c
                        for k, c in rec["cells"].items()})
        timings["supervised_cnn"] = rec["seconds"]
    stage.write_metrics(metrics_path, metrics)
    done.finish()
    stage.write_provenance(provenance_dir, seconds_per_row=timings, missing_rows=missing,
                           reused_rows=done.reused,
                           seeds=sorted({s for c in metrics.values() for s in c["seeds"]}))


class _Judge:
    """Comparability of Table 2's cells: the protocol diff of a row kind and column against
    the run's effective protocol (with per-row facts), and the deviations that go with it."""

    def __init__(self, protocol: Protocol, effective: dict, deviations: list[str],
                 paper_rows: bool):
        self.protocol, self.table = protocol, protocol.table
        self.effective, self.deviations, self.paper_rows = effective, deviations, paper_rows

    def __call__(self, kind: str, published: bool, column: str = "err@1000",
                 moved: list[dict] = (), **facts) -> dict:
        diff = self.protocol.diff(kind, column, {**self.effective, **facts}) + list(moved)
        return {"comparable": comparable(published and self.paper_rows, diff),
                "protocol_diff": diff, "lines": diff_lines(diff)}


def _timed(compute) -> dict:
    t0 = time.perf_counter()
    cells = compute()
    return {"cells": cells, "seconds": round(time.perf_counter() - t0, 2)}


def _svm_row(src, cfg: Table2Config, stage: Stage, images: dict, y: dict, size: int,
             cache: Path) -> dict:
    """One checkpoint's (or raw pixels') features, C selection and test errors (a JSON record)."""
    t0 = time.perf_counter()
    feats = features(src, images, cfg.features, stage.device, size, cache)
    X = feats.sets
    common = dict(solver=cfg.svm.solver, device=stage.device, **cfg.svm.options())
    sel = choose_C(X["train"], y["train"], X["valid"], y["valid"], grid=list(cfg.svm.C_grid),
                   per_class=cfg.per_class, draws=cfg.select_draws, seed=cfg.seed, **common)
    accs = svm_draws(X["train"], y["train"], X["test"], y["test"], per_class=cfg.per_class,
                     draws=cfg.test_draws, C=sel["best_C"], seed=cfg.seed + 1,
                     desc=f"{src.row} test draws", **common)
    feats.sets = {}  # the memmaps live in the cache folder; keep only the facts
    ckpt = feats.checkpoint or {}
    return {"errs": [100 * (1 - a) for a in accs], "best_C": sel["best_C"],
            "val_acc": sel["val_acc"], "seed": feats.seed, "feature_dim": feats.feature_dim,
            "data_source": feats.data_source, "has_checkpoint": bool(feats.checkpoint),
            "ckpt_deviations": list(ckpt.get("deviations", [])),
            "ckpt_dry_run": bool(ckpt.get("dry_run")),
            "seconds": round(time.perf_counter() - t0, 2)}


def _svm_cell(row: str, src: Source, results: list[dict], base: dict, judge: _Judge) -> dict:
    errs = [e for r in results for e in r["errs"]]
    first = results[0]
    ckpt_devs = [d for r in results for d in r["ckpt_deviations"]]
    seeds = [r["seed"] for r in results if r["seed"] is not None]
    ckpt_dry = any(r["ckpt_dry_run"] for r in results)
    spec = judge.protocol.row(row, src.train_name)
    compares_to = f"{judge.table}/{spec.published}/err@1000" if spec.published else None
    what = getattr(src.module, "what", None) or spec.what
    std = float(np.std(errs, ddof=1)) if len(errs) > 1 else None
    j = judge(src.kind, compares_to is not None, checkpoint_dry_run=ckpt_dry,
              moved=judge.protocol.source_diff(row, src.train_name, src.expect_variant))
    return metric_cell(
        errs, seeds=seeds, comparable=j["comparable"],
        compares_to=compares_to,
        protocol={**base, "representation": what, "feature_dim": first["feature_dim"],
                  "pretraining_data": first["data_source"],
                  "checkpoint_source": "authors" if row == "dcgan_authors" else
                  ("harness" if first["has_checkpoint"] else "none"),
                  "C": [r["best_C"] for r in results]},
        val_acc_by_C=[r["val_acc"] for r in results],
        deviations=list(dict.fromkeys(judge.deviations + ckpt_devs + j["lines"])),
        protocol_diff=j["protocol_diff"],
        n_labels=base["n_labels"], n_draws=len(first["errs"]),
        ci95=1.96 * std if std is not None else None,
        per_seed=[float(np.mean(r["errs"])) for r in results])


def _knn_cell(cfg: Table2Config, pool, test, base: dict, judge: _Judge,
              device: torch.device) -> dict:
    """1-NN (Euclidean, raw pixels in [0, 1]) on each test draw's labelled images."""
    q = test.images.flatten(1).float() / 255  # (Q, D)
    errs = []
    for d in range(cfg.test_draws):
        idx = torch.from_numpy(per_class_draw(pool.labels.numpy(), cfg.per_class,
                                              draw_rng(cfg.seed + 1, d)))
        nn = StreamingNN(q.to(device), device=device)
        nn.update((pool.images[idx].flatten(1).float() / 255).to(device), pool.labels[idx].to(device))
        errs.append(100.0 * (nn.predict().cpu() != test.labels).float().mean().item())
    j = judge(KNN, True)
    return metric_cell(errs, comparable=j["comparable"],
                       compares_to=f"{judge.table}/{TABLE2_KNN.published}/err@1000",
                       protocol={**base, "representation": TABLE2_KNN.what},
                       deviations=judge.deviations + j["lines"], protocol_diff=j["protocol_diff"],
                       n_labels=base["n_labels"], n_draws=len(errs))


def _supervised_cells(cfg: Table2Config, pool, valid, test, stage: Stage, base: dict,
                      judge: _Judge) -> dict:
    sup = cfg.supervised
    idx = torch.from_numpy(per_class_draw(pool.labels.numpy(), cfg.per_class, draw_rng(cfg.seed + 1, 0)))
    res = random_search(MODELS.get(sup.variant), (pool.images[idx], pool.labels[idx]),
                        (valid.images, valid.labels), (test.images, test.labels),
                        n_trials=sup.trials, space=sup, seed=sup.seed,
                        n_classes=int(pool.labels.max()) + 1, device=stage.device)
    best = res["best"]
    protocol = {**base, "representation": f"supervised CNN, {sup.variant} D architecture",
                "trials": sup.trials, "labelled_draw": "the first test draw"}
    extra = {"search_space": sup.space(), "best_trial": best}
    devs = judge.deviations + ["the paper gives no search space; ours is in protocol.search_space"]
    row = TABLE2_SUPERVISED.published
    val, test_j = judge(SUPERVISED, True, "val_err@1000"), judge(SUPERVISED, False, "err@1000")
    return {  # the paper prints only the validation error of this row
        f"{judge.table}/{row}/val_err@1000": metric_cell(
            [best["val_err"]], comparable=val["comparable"],
            compares_to=f"{judge.table}/{row}/val_err@1000", protocol=protocol,
            deviations=devs + val["lines"], protocol_diff=val["protocol_diff"],
            n_labels=base["n_labels"], all_trials=res["trials"], **extra),
        f"{judge.table}/{row}/err@1000": metric_cell(
            [best["test_err"]], comparable=False, compares_to=None,
            protocol=protocol, deviations=devs + test_j["lines"],
            protocol_diff=test_j["protocol_diff"], n_labels=base["n_labels"], **extra),
    }


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, ['checkpoints', 'metrics', 'provenance'], argv)


if __name__ == "__main__":
    main()
