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

The rows run on the probe-table runner (repro.protocols.runner); this module is the table's
spec (section, columns, data split, cell facts) and its two rows that are not probes.

Each finished row (an SVM row's checkpoint, the KNN row, the supervised search) is kept in
`<metrics>.partial.json` beside the metrics file (not a declared output, so `dvc repro` leaves
it); a rerun with the same config and inputs reuses those rows, and the file is removed once
the metrics file is written (repro.protocols.rows).

    python -m repro.stages.table2 --checkpoints results/checkpoints \
        --metrics results/metrics/table2_svhn.json --provenance results/provenance
"""

from __future__ import annotations

import time

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt

from repro.config import Section
from repro.data.fit import Fit
from repro.errors import cli_errors
from repro.eval.probe import draw_rng, per_class_draw, split_off
from repro.eval.supervised import SearchSpace, random_search
from repro.published.protocol import KNN, SUPERVISED, TABLE2, TABLE2_KNN, TABLE2_SUPERVISED
from repro.registry import EVALUATORS, MODELS
from repro.stages.common import Stage, metric_cell
from repro.protocols.runner import Column, ProbeData, ProbeTable, Run, stage_entry
from repro.protocols.probing import FeatureConfig, SvmConfig, load_split, rows_of

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
    # a registered evaluator (repro.eval.evaluators) fitted on the features
    evaluator: str = P.evaluator
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


def load(stage: Stage, cfg: Table2Config, size: int, channels: int) -> ProbeData:
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
    return ProbeData({k: d.images for k, d in sets.items()},
                     {k: d.labels.numpy() for k, d in sets.items()},
                     ("train", None, "valid", None), pool.real and test.real, pool.source,
                     {"sets": sets})


def effective_protocol(stage: Stage, cfg: Table2Config, *, real: bool, n_valid: int) -> dict:
    """The run's value of every protocol field its rows share (repro.published.protocol);
    rows add their checkpoint's facts."""
    return {"real_data": real, "dry_run": stage.dry_run,
            "preprocessing": list(stage.data_deviations), "dataset": cfg.dataset,
            "n_valid": n_valid, "max_train": cfg.max_train, "max_test": cfg.max_test,
            "per_class": cfg.per_class, "select_draws": cfg.select_draws,
            "test_draws": cfg.test_draws, "C_grid": list(cfg.svm.C_grid),
            "bn": cfg.features.bn, "trials": cfg.supervised.trials, "checkpoint_dry_run": False,
            "evaluator": cfg.evaluator}


def facts(stage: Stage, cfg: Table2Config, data: ProbeData) -> tuple[dict, dict]:
    pool, valid, test = (data.facts["sets"][k] for k in ("train", "valid", "test"))
    n_labels = cfg.per_class * len(np.unique(data.labels["train"]))
    base = stage.protocol(dataset=cfg.dataset, n_pool=len(pool), n_valid=len(valid),
                          n_test=len(test), n_labels=n_labels, per_class=cfg.per_class,
                          test_source=test.source, solver=cfg.svm.solver, bn=cfg.features.bn)
    return effective_protocol(stage, cfg, real=data.real, n_valid=len(valid)), base


def harness_rows(run: Run) -> dict[str, dict]:
    """The KNN row (1-NN on raw pixels of the test draws) and the supervised CNN's cells;
    each a finished row of its own."""
    cfg, out = run.cfg, {}
    if cfg.knn:
        out[f"{run.prefix}/knn/err@1000"] = run.done.run("knn", "", lambda: _knn_cell(run))
    if cfg.supervised.trials:
        rec = run.done.run("supervised_cnn", "", lambda: _timed(lambda: _supervised_cells(run)))
        out.update({k.replace(f"{run.spec.table}/", f"{run.prefix}/", 1): c
                    for k, c in rec["cells"].items()})
    return out


def _timed(compute) -> dict:
    t0 = time.perf_counter()
    cells = compute()
    return {"cells": cells, "seconds": round(time.perf_counter() - t0, 2)}


def _knn_cell(run: Run) -> dict:
    """1-NN (Euclidean, raw pixels in [0, 1]) on each test draw's labelled images."""
    cfg, device = run.cfg, run.stage.device
    pool, test = run.data.facts["sets"]["train"], run.data.facts["sets"]["test"]
    evaluator = EVALUATORS.get(TABLE2_KNN.evaluator)
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
                       compares_to=f"{run.spec.table}/{TABLE2_KNN.published}/err@1000",
                       protocol={**run.base, "representation": TABLE2_KNN.what,
                                 "evaluator": evaluator.label},
                       deviations=run.deviations + j["lines"], protocol_diff=j["protocol_diff"],
                       n_labels=run.base["n_labels"], n_draws=len(errs))


def _supervised_cells(run: Run) -> dict:
    cfg, base, table = run.cfg, run.base, run.spec.table
    sup = cfg.supervised
    pool, valid, test = (run.data.facts["sets"][k] for k in ("train", "valid", "test"))
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
    row = TABLE2_SUPERVISED.published
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


SPEC = ProbeTable(
    protocol=P, config=Table2Config,
    columns=(Column("err@1000", draws="test_draws", select_draws="select_draws", error=True),),
    load=load, facts=facts, dry=_dry, harness_rows=harness_rows,
    # the supervised row's architecture fixes the input: svhn32's 32x32 RGB
    input_shape=lambda cfg: (MODELS.get(cfg.supervised.variant).spec.image_size,
                             MODELS.get(cfg.supervised.variant).spec.channels))


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_entry(SPEC, __doc__)(argv)


if __name__ == "__main__":
    main()
