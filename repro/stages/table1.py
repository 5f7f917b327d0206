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

The rows run on the probe-table runner (repro.protocols.runner); this module is the table's
spec: its section, columns, data split and the facts its cells record.

Each finished row (one representation, one checkpoint) is kept in
`<metrics>.partial.json` beside the metrics file (not a declared output); a rerun with the same
config and inputs reuses those rows, and the file is removed once the metrics file is written
(repro.protocols.rows).

    python -m repro.stages.table1 --checkpoints results/checkpoints \
        --metrics results/metrics/table1_cifar10.json --provenance results/provenance
"""

from __future__ import annotations

from pydantic import Field, PositiveInt

from repro.config import Section
from repro.data.fit import Fit
from repro.errors import cli_errors
from repro.eval.probe import split_off
from repro.published.protocol import KMEANS, TABLE1
from repro.stages.common import Stage
from repro.protocols.runner import Column, ProbeData, ProbeTable, stage_entry
from repro.protocols.probing import (FeatureConfig, KMeansConfig, SvmConfig, load_split, rows_of)

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
    # a registered evaluator (repro.eval.evaluators) fitted on the features
    evaluator: str = P.evaluator
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


def load(stage: Stage, cfg: Table1Config, size: int, channels: int) -> ProbeData:
    """Train and test splits; C is chosen on `n_valid` images carved off train, and the test
    fits use the whole training set."""
    train = load_split(stage, cfg.dataset, cfg.train_split, cfg.max_train, size, channels, cfg.fit,
                       cfg.seed)
    test = load_split(stage, cfg.dataset, cfg.test_split, cfg.max_test, size, channels, cfg.fit,
                      cfg.seed)
    rest, val = split_off(len(train), cfg.n_valid, cfg.seed)
    return ProbeData({"train": train.images, "test": test.images},
                     {"train": train.labels.numpy(), "test": test.labels.numpy()},
                     ("train", rest, "train", val), train.real and test.real, train.source,
                     {"n_train": len(train), "n_test": len(test), "n_valid": len(val),
                      "train_source": train.source, "test_source": test.source})


def effective_protocol(stage: Stage, cfg: Table1Config, *, real: bool, n_train: int,
                       n_test: int, n_valid: int) -> dict:
    """The run's value of every protocol field its rows share (repro.published.protocol);
    rows add their checkpoint's facts."""
    return {"real_data": real, "dry_run": stage.dry_run,
            "preprocessing": list(stage.data_deviations), "dataset": cfg.dataset,
            "n_train": n_train, "n_test": n_test, "per_class": cfg.per_class,
            "draws": cfg.draws, "n_valid": n_valid, "select_draws": cfg.select_draws,
            "C_grid": list(cfg.svm.C_grid), "bn": cfg.features.bn,
            "kmeans_centroids": cfg.kmeans.n_centroids, "evaluator": cfg.evaluator}


def facts(stage: Stage, cfg: Table1Config, data: ProbeData) -> tuple[dict, dict]:
    n = data.facts
    effective = effective_protocol(stage, cfg, real=data.real, n_train=n["n_train"],
                                   n_test=n["n_test"], n_valid=n["n_valid"])
    base = stage.protocol(dataset=cfg.dataset, train_source=n["train_source"],
                          test_source=n["test_source"], n_train=n["n_train"], n_test=n["n_test"],
                          solver=cfg.svm.solver, bn=cfg.features.bn, C_grid=list(cfg.svm.C_grid))
    return effective, base


def _notes(cfg: Table1Config, data: ProbeData) -> list[str]:
    return [f"C chosen by the harness on {data.facts['n_valid']} validation images carved off "
            "the training set (the paper does not say how C was chosen)"]


def _row_notes(cfg: Table1Config, kind: str) -> list[str]:
    if kind != KMEANS:
        return []
    return [f"K-means recipe and sizes are the harness's ({cfg.kmeans.n_centroids} centroids, "
            f"{cfg.kmeans.patch}x{cfg.kmeans.patch} patches); the paper quotes this row from "
            "Coates et al."]


SPEC = ProbeTable(
    protocol=P, config=Table1Config,
    columns=(Column("acc"), Column("acc@400pc", draws="draws", select_draws="select_draws"),
             # the paper's "max # of features units": the widest D layer; K-means: centroids
             Column("max_features", units=True)),
    load=load, facts=facts, input_shape=lambda cfg: (cfg.image_size, 3), dry=_dry,
    notes=_notes, row_notes=_row_notes)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_entry(SPEC, __doc__)(argv)


if __name__ == "__main__":
    main()
