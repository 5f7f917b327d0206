"""Table 2: SVHN with 1000 labels: discriminator features + L2-SVM, and baselines.

The authors' protocol (../shared/reference/protocol.md, Table 2):
1. 10,000 validation images split off the training set; the labelled pool is the rest.
2. Features of D (svhn32: 7,168-d), BN statistics inferred once over training images.
3. C from the authors' grid by the best mean validation error over `select_draws` random
   draws of 100 labels per class (the same draws for every C).
4. `test_draws` new draws with that C: mean test error, std and 1.96 x std.
Rows: the authors' own checkpoint (port_svhn stage) and our retrained svhn32 (one cell each,
all seeds' draws pooled), and the harness's baselines: raw pixels + the same L2-SVM, 1-NN on
raw pixels of the same draws (the paper's "KNN" row), and the supervised CNN with D's
architecture on one draw's 1000 labels, hyperparameters by random search (the last two are
harness rows: each a finished row of its own, kept across a kill).
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import torch
from pydantic import Field as ConfigField
from pydantic import NonNegativeInt, PositiveInt

from repro.config import Section
from repro.data.fit import Fit
from repro.eval.probe import draw_rng, per_class_draw, split_off
from repro.eval.supervised import SearchSpace, random_search
from repro.protocols.linear import LINEAR_PROBE
from repro.protocols.probing import FeatureConfig, SvmConfig, load_split, rows_of
from repro.protocols.runner import Run
from repro.data.loading import dataset_spec
from repro.protocols.unit import Column, PlanCounts, TableData, TableUnit, split_size
from repro.published import PublishedCell, TableSpec
from repro.published.protocol import (AUTHORS_C_GRID, CHECKPOINT, CKPT_DRY, COMMON, KMEANS, KNN,
                                      RAW, SUPERVISED, Field, Protocol, Row)
from repro.registry import EVALUATORS, MODELS
from repro.context import Stage, metric_cell
from repro.tables import TABLES

_PROBE = (CHECKPOINT, RAW, KMEANS)  # the rows an L2-SVM is fitted on

PROTOCOL = Protocol(
    table="table2",
    evaluator="l2svm",
    columns=("err@1000", "val_err@1000"),
    fields=COMMON + (
        Field("dataset", "svhn"),
        Field("n_valid", 10_000, reads="@n_valid"),
        Field("max_train", None),  # the whole labelled pool
        Field("max_test", None),  # the whole test split
        Field("per_class", 100),
        Field("select_draws", 10, kinds=_PROBE),
        Field("test_draws", 100, kinds=_PROBE + (KNN,)),
        Field("C_grid", list(AUTHORS_C_GRID), kinds=_PROBE, reads="svm.C_grid"),
        Field("evaluator", "l2svm", kinds=_PROBE),
        Field("bn", "inferred", kinds=(CHECKPOINT,), reads="features.bn"),
        Field("trials", 64, kinds=(SUPERVISED,), reads="supervised.trials"),
        CKPT_DRY,
    ),
    rows={
        "dcgan_l2svm": Row(CHECKPOINT, "our svhn32, trained by this harness", source="svhn32",
                           variant="svhn32", published="dcgan_l2svm"),
        "dcgan_authors": Row(CHECKPOINT, "the authors' checkpoint (Newmu/dcgan_code)",
                             source="authors_svhn", variant="svhn32_authors",
                             published="dcgan_l2svm"),
        "raw_pixels": Row(RAW, "harness baseline: raw pixels + the same L2-SVM"),
    },
)
# the rows that are not probes of a representation: always run, not configured as models
KNN_ROW = Row(KNN, "1-NN on raw pixels of the same draws", published="knn", evaluator="nn1")
SUPERVISED_ROW = Row(SUPERVISED, "supervised CNN with D's architecture",
                     published="supervised_cnn")

# Tolerances: 1.0 pp (as Table 1's errors), except DCGAN's 1.13 pp: the +- (1.96 x std over
# 100 label draws) of the authors' later result for the same method, the spread between
# 1000-label draws, which dominates.
_err = partial(PublishedCell, unit="%", direction="lower", tolerance=1.0)

PUBLISHED = TableSpec(
    title="Table 2: SVHN classification with 1000 labels",
    caption="SVHN classification with 1000 labels (test error rate).",
    rows={"knn": "KNN", "tsvm": "TSVM", "m1_knn": "M1+KNN", "m1_tsvm": "M1+TSVM",
          "m1_m2": "M1+M2", "swwae": "SWWAE without dropout",
          "swwae_dropout": "SWWAE with dropout", "dcgan_l2svm": "DCGAN (ours) + L2-SVM",
          "supervised_cnn": "Supervised CNN with the same architecture"},
    columns={"err@1000": "error rate", "val_err@1000": "error rate (validation)"},
    cells=(
        _err(id="table2/knn/err@1000", value=77.93),
        _err(id="table2/tsvm/err@1000", value=66.55),
        _err(id="table2/m1_knn/err@1000", value=65.63),
        _err(id="table2/m1_tsvm/err@1000", value=54.33),
        _err(id="table2/m1_m2/err@1000", value=36.02),
        _err(id="table2/swwae/err@1000", value=27.83),
        _err(id="table2/swwae_dropout/err@1000", value=23.56),
        _err(id="table2/dcgan_l2svm/err@1000", value=22.48, tolerance=1.13,
             note="arXiv v2 prints 22.48% with no +-; the authors' later code result (quoted by "
                  "later citations) is 22.18% +- 1.13% (mean test error and 1.96 x std over 100 "
                  "label draws). The band uses that +- as tolerance."),
        _err(id="table2/supervised_cnn/val_err@1000", value=28.87,
             note="A validation error (64 random-search trials), not a test error."),
    ),
)

_MODELS, _VARIANTS = rows_of(PROTOCOL)


class SupervisedConfig(SearchSpace):
    """Table 2's supervised row: the search space (repro.eval.supervised) plus its budget."""

    trials: NonNegativeInt = PROTOCOL.paper("trials")  # 0: no supervised row
    seed: int = 0
    variant: str = "svhn32"  # D architecture to train from scratch


class Table2Config(Section):
    dataset: str = PROTOCOL.paper("dataset")
    train_split: str = "train"
    # A split of the dataset, or null: carve n_valid images off train_split (seeded).
    valid_split: str | None = "valid"
    n_valid: PositiveInt = PROTOCOL.paper("n_valid")
    test_split: str = "test"
    max_train: PositiveInt | None = None
    max_valid: PositiveInt | None = None
    max_test: PositiveInt | None = None
    per_class: PositiveInt = PROTOCOL.paper("per_class")
    select_draws: PositiveInt = PROTOCOL.paper("select_draws")
    test_draws: PositiveInt = PROTOCOL.paper("test_draws")
    seed: int = 0
    # a registered evaluator (repro.eval.evaluators) fitted on the features
    evaluator: str = PROTOCOL.evaluator
    # row id -> checkpoint folder under the checkpoints dir, or "raw_pixels"
    models: dict[str, str] = ConfigField(default_factory=lambda: dict(_MODELS))
    # row id -> the variant its checkpoints must hold (checkpoint rows only)
    variants: dict[str, str] = ConfigField(default_factory=lambda: dict(_VARIANTS))
    knn: bool = True
    # How images of another size or channel count are fitted to the 32x32 RGB models:
    # "resize" (bilinear) or "pad" (zero padding, how the authors fed 28x28 MNIST to a 32x32
    # model); either is a deviation named on every cell (repro.data.fit).
    fit: Fit = "resize"
    features: FeatureConfig = ConfigField(default_factory=lambda: FeatureConfig(bn=PROTOCOL.paper("bn")))
    svm: SvmConfig = ConfigField(default_factory=lambda: SvmConfig(C_grid=list(PROTOCOL.paper("C_grid"))))
    supervised: SupervisedConfig = ConfigField(default_factory=SupervisedConfig)


def load(stage: Stage, cfg: Table2Config, size: int, channels: int) -> TableData:
    """The labelled pool ("train"), a validation split (the dataset's, or carved off the
    pool) that C is chosen on, and the test split."""
    train = load_split(stage, cfg.dataset, cfg.train_split, cfg.max_train, size, channels, cfg.fit,
                       cfg.seed)
    test = load_split(stage, cfg.dataset, cfg.test_split, cfg.max_test, size, channels, cfg.fit,
                      cfg.seed)
    if cfg.valid_split:
        valid = load_split(stage, cfg.dataset, cfg.valid_split, cfg.max_valid, size, channels,
                           cfg.fit, cfg.seed)
        pool = train
    else:
        rest, val = split_off(len(train), cfg.n_valid, cfg.seed)
        pool, valid = train.subset(torch.from_numpy(rest)), train.subset(torch.from_numpy(val))
    sets = {"train": pool, "valid": valid, "test": test}
    return TableData({k: d.images for k, d in sets.items()},
                     {k: d.labels.numpy() for k, d in sets.items()},
                     pool.real and test.real, pool.source, facts={"n_valid": len(valid)},
                     select=("train", None, "valid", None), extra={"sets": sets})


def cell_protocol(stage: Stage, cfg: Table2Config, data: TableData) -> dict:
    pool, valid, test = (data.extra["sets"][k] for k in ("train", "valid", "test"))
    n_labels = cfg.per_class * len(np.unique(data.labels["train"]))
    return stage.protocol(dataset=cfg.dataset, n_pool=len(pool), n_valid=len(valid),
                          n_test=len(test), n_labels=n_labels, per_class=cfg.per_class,
                          test_source=test.source, solver=cfg.svm.solver, bn=cfg.features.bn)


def harness_rows(run: Run) -> dict[str, dict]:
    """The KNN row (1-NN on raw pixels of the test draws) and the supervised CNN's cells;
    each a finished row of its own."""
    cfg, out = run.cfg, {}
    if cfg.knn:
        out[f"{run.prefix}/knn/err@1000"] = run.done.run("knn", "", lambda: _knn_cell(run))
    if cfg.supervised.trials:
        rec = run.done.run("supervised_cnn", "", lambda: _timed(lambda: _supervised_cells(run)))
        out.update({k.replace(f"{run.unit.name}/", f"{run.prefix}/", 1): c
                    for k, c in rec["cells"].items()})
    return out


def _timed(compute) -> dict:
    t0 = time.perf_counter()
    cells = compute()
    return {"cells": cells, "seconds": round(time.perf_counter() - t0, 2)}


def _knn_cell(run: Run) -> dict:
    """1-NN (Euclidean, raw pixels in [0, 1]) on each test draw's labelled images."""
    cfg, device = run.cfg, run.stage.device
    pool, test = run.data.extra["sets"]["train"], run.data.extra["sets"]["test"]
    evaluator = EVALUATORS.get(KNN_ROW.evaluator)
    q = test.images.flatten(1).float() / 255  # (Q, D)
    errs = []
    for d in range(cfg.test_draws):
        idx = torch.from_numpy(per_class_draw(pool.labels.numpy(), cfg.per_class,
                                              draw_rng(cfg.seed + 1, d)))
        clf = evaluator.make(device=device).fit(pool.images[idx].flatten(1).float() / 255,
                                                pool.labels[idx])
        errs.append(100.0 * (clf.predict(q) != test.labels).float().mean().item())
    j = run.judge(KNN, True, "err@1000")
    return metric_cell(errs, comparable=j["comparable"],
                       compares_to=f"{run.unit.name}/{KNN_ROW.published}/err@1000",
                       protocol={**run.base, "representation": KNN_ROW.what,
                                 "evaluator": evaluator.label},
                       deviations=run.deviations + j["lines"], protocol_diff=j["protocol_diff"],
                       n_labels=run.base["n_labels"], n_draws=len(errs))


def _supervised_cells(run: Run) -> dict:
    cfg, base, table = run.cfg, run.base, run.unit.name
    sup = cfg.supervised
    pool, valid, test = (run.data.extra["sets"][k] for k in ("train", "valid", "test"))
    idx = torch.from_numpy(per_class_draw(pool.labels.numpy(), cfg.per_class, draw_rng(cfg.seed + 1, 0)))
    res = random_search(MODELS.get(sup.variant), (pool.images[idx], pool.labels[idx]),
                        (valid.images, valid.labels), (test.images, test.labels),
                        n_trials=sup.trials, space=sup, seed=sup.seed,
                        n_classes=int(pool.labels.max()) + 1, device=run.stage.device)
    best = res["best"]
    protocol = {**base, "representation": f"supervised CNN, {sup.variant} D architecture",
                "evaluator": "the CNN's own softmax classifier",
                "trials": sup.trials, "labelled_draw": "the first test draw"}
    extra = {"search_space": sup.space(), "best_trial": best}
    devs = run.deviations + ["the paper gives no search space; ours is in protocol.search_space"]
    row = SUPERVISED_ROW.published
    val = run.judge(SUPERVISED, True, "val_err@1000")
    test_j = run.judge(SUPERVISED, False, "err@1000")
    return {  # the paper prints only the validation error of this row
        f"{table}/{row}/val_err@1000": metric_cell(
            [best["val_err"]], comparable=val["comparable"],
            compares_to=f"{table}/{row}/val_err@1000", protocol=protocol,
            deviations=devs + val["lines"], protocol_diff=val["protocol_diff"],
            n_labels=base["n_labels"], all_trials=res["trials"], **extra),
        f"{table}/{row}/err@1000": metric_cell(
            [best["test_err"]], comparable=False, compares_to=None,
            protocol=protocol, deviations=devs + test_j["lines"],
            protocol_diff=test_j["protocol_diff"], n_labels=base["n_labels"], **extra),
    }


def _plan(cfg: Table2Config, carved: bool) -> PlanCounts:
    """The probe's counts: draws of labels from the pool, C chosen on the validation set (a
    split, or carved from train), then test draws."""
    train = split_size(cfg.dataset, cfg.train_split, cfg.max_train)
    test = split_size(cfg.dataset, cfg.test_split, cfg.max_test)
    carved = carved or not cfg.valid_split
    valid = (min(cfg.n_valid, train) if carved
             else split_size(cfg.dataset, cfg.valid_split, cfg.max_valid))
    draw = cfg.per_class * (dataset_spec(cfg.dataset).n_classes or 10)
    draws = cfg.select_draws * len(cfg.svm.C_grid) + cfg.test_draws
    where = "carved from train" if carved else f"split {cfg.valid_split!r}"
    return PlanCounts(
        sets=(f"{train - valid if carved else train:,} labelled pool + {valid:,} validation "
              f"({where}) + {test:,} test"),
        fits=f"{draws} SVM fits on draws of {draw:,} labels ({cfg.per_class} per class)",
        images=train + test + (0 if carved else valid), draw_size=draw, draw_fits=draws)


UNIT = TABLES.register("table2")(TableUnit(
    protocol=PROTOCOL, published=PUBLISHED, config=Table2Config, metrics="table2_svhn",
    columns=(Column("err@1000", draws="test_draws", select_draws="select_draws", error=True),),
    scorer=LINEAR_PROBE, load=load, cell_protocol=cell_protocol, harness_rows=harness_rows,
    # the supervised row's architecture fixes the input: svhn32's 32x32 RGB
    input_shape=lambda cfg: (MODELS.get(cfg.supervised.variant).spec.image_size,
                             MODELS.get(cfg.supervised.variant).spec.channels),
    dry={"per_class": lambda n: min(n, 3), "select_draws": 2, "test_draws": 2,
         "n_valid": lambda n: min(n, 64), "valid_split": None,
         "svm.C_grid": lambda grid: grid[:2], "supervised.trials": lambda n: min(n, 1),
         "supervised.epochs": [1], "supervised.batch_size": [8]},
    seeds=("seed", "supervised.seed"), plan=_plan))
