"""The paper's evaluation protocols, declared once, as data (../shared/reference/protocol.md).

For each table (and the figures): its rows (what each row probes or samples: a checkpoint
folder and the variant it must hold, or a harness baseline), its protocol fields with the
paper's value of each, and the table's cells (`paper.yaml`, keyed `<table>/<row>/<column>`).
The stages' config defaults are read from here, so a profile only overrides fields, and a
cell's comparability is derived from here, field by field (`protocol_diff`), never from the
profile's name.

A field applies to some row kinds (`kinds`, None: every row) and some columns (`columns`,
None: every column). Where the paper does not say (e.g. how Table 1's C was chosen), the value
is the harness's declared reading, marked `harness=True`: it is still part of the protocol, so
a run that changes it is told so on every cell it affects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from repro.errors import ReproError

# Row kinds: what produces a row's numbers.
CHECKPOINT = "checkpoint"  # a discriminator (Tables 1, 2) or generator (Table 3) checkpoint
RAW = "raw_pixels"  # the raw pixels themselves (a harness baseline)
KMEANS = "kmeans"  # single-layer K-means features (Coates et al.), fitted by the harness
KNN = "knn"  # 1-NN on raw pixels of the labelled draws (Table 2's KNN row)
SUPERVISED = "supervised"  # a CNN with D's architecture trained on the labels (Table 2)
REAL = "real"  # 1-NN fitted on real training images (Table 3's Real Data row)


@dataclass(frozen=True)
class Field:
    name: str
    paper: Any
    kinds: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    harness: bool = False  # the paper does not say; this is the harness's declared choice

    def applies(self, kind: str, column: str) -> bool:
        return ((self.kinds is None or kind in self.kinds)
                and (self.columns is None or column in self.columns))


@dataclass(frozen=True)
class Row:
    kind: str
    what: str  # the representation or generator, as the cells' protocol names it
    source: str | None = None  # checkpoint folder (a train section) for checkpoint rows
    variant: str | None = None  # the variant the row's checkpoints must hold
    published: str | None = None  # the paper's row it is compared with (None: harness only)
    evaluator: str | None = None  # a registered evaluator other than the table's (Table 2's KNN)


@dataclass(frozen=True)
class Protocol:
    table: str
    # the registered evaluator (repro.eval.evaluators) that scores the rows; None: no classifier
    evaluator: str | None
    fields: tuple[Field, ...]
    rows: Mapping[str, Row]
    columns: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def paper(self, name: str, kind: str | None = None, column: str | None = None) -> Any:
        """The paper's value of field `name` (for a row kind and column, where it varies)."""
        for f in self.fields:
            if f.name == name and (kind is None or f.kinds is None or kind in f.kinds) and (
                    column is None or f.columns is None or column in f.columns):
                return f.paper
        raise ReproError(f"{self.table} protocol has no field {name!r}")

    def row(self, row_id: str, source: str) -> Row:
        """The declared row (when `source` is of its kind), or a harness row for an id the
        protocol does not declare (a profile may add rows: raw pixels again, another folder)."""
        kind = source if source in (RAW, KMEANS) else CHECKPOINT
        if row_id in self.rows and self.rows[row_id].kind == kind:
            return self.rows[row_id]
        return Row(kind, {RAW: "harness baseline: raw pixels", KMEANS: "K-means features (harness)"}
                   .get(source, f"{source} checkpoint (a harness row)"), source=source)

    def source_diff(self, row_id: str, source: str, variant: str | None) -> list[dict[str, Any]]:
        """A declared checkpoint row fed from another folder or variant than the protocol's
        says so (the fields `source` and `variant` of that row)."""
        row = self.rows.get(row_id)
        if row is None or row.kind != CHECKPOINT:
            return []
        return [{"field": f"{row_id}.{name}", "paper": want, "run": got}
                for name, want, got in (("source", row.source, source),
                                        ("variant", row.variant, variant)) if want != got]

    def diff(self, kind: str | None, column: str, run: Mapping[str, Any],
             stated_only: bool = False) -> list[dict[str, Any]]:
        """[{field, paper, run}] for every field that applies to (kind, column) and whose run
        value differs from the paper's: empty when the cell followed the paper's protocol.
        `stated_only`: fields `run` does not state are skipped (the report re-deriving a
        stored cell's diff) instead of refused (a stage must state every field)."""
        out = []
        for f in self.fields:
            if not f.applies(kind, column) or (stated_only and f.name not in run):
                continue
            if f.name not in run:
                raise ReproError(f"{self.table}: the run states no value of protocol field "
                                 f"{f.name!r}; the stage must report it")
            if _norm(run[f.name]) != _norm(f.paper):
                out.append({"field": f.name, "paper": f.paper, "run": run[f.name]})
        return out


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def comparable(published: bool, diff: list[dict]) -> bool:
    """A cell is comparable when it has a published counterpart and no protocol field
    differs from the paper's (real data and no dry run are fields too)."""
    return published and not diff


def diff_lines(diff: list[dict]) -> list[str]:
    """The deviations a protocol diff names, one per field."""
    return [f"protocol: {d['field']} = {d['run']!r} (paper: {d['paper']!r})" for d in diff]


# Fields every table shares: the data are real, no stage ran as a dry run, and no image was
# resized, padded or recoloured to fit a model (repro.data.fit).
_COMMON = (Field("real_data", True), Field("dry_run", False), Field("preprocessing", []))
_CKPT_DRY = Field("checkpoint_dry_run", False, kinds=(CHECKPOINT,))

# The authors' LinearSVC grid for SVHN (dcgan_code/svhn/svhn_semisup_analysis.py).
AUTHORS_C_GRID = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)

_PROBE = (CHECKPOINT, RAW, KMEANS)  # the rows an L2-SVM is fitted on

TABLE1 = Protocol(
    table="table1",
    evaluator="l2svm",
    columns=("acc", "acc@400pc", "max_features"),
    fields=_COMMON[:2] + (
        Field("preprocessing", [], columns=("acc", "acc@400pc")),
        Field("dataset", "cifar10", columns=("acc", "acc@400pc")),
        Field("n_train", 50_000, columns=("acc", "acc@400pc")),
        Field("n_test", 10_000, columns=("acc", "acc@400pc")),
        Field("per_class", 400, columns=("acc@400pc",)),
        Field("draws", 10, columns=("acc@400pc",)),
        Field("n_valid", 5_000, columns=("acc", "acc@400pc"), harness=True),
        Field("select_draws", 3, columns=("acc@400pc",), harness=True),
        Field("C_grid", [1e-4, 1e-3, 1e-2, 1e-1], columns=("acc", "acc@400pc"), harness=True),
        Field("evaluator", "l2svm", columns=("acc", "acc@400pc")),
        Field("bn", "inferred", kinds=(CHECKPOINT,), columns=("acc", "acc@400pc")),
        Field("pretraining_data", "imagenet32", kinds=(CHECKPOINT,), columns=("acc", "acc@400pc")),
        Field("variant", "imagenet32", kinds=(CHECKPOINT,)),
        Field("kmeans_centroids", 4800, kinds=(KMEANS,)),
        Field("checkpoint_dry_run", False, kinds=(CHECKPOINT,), columns=("acc", "acc@400pc")),
    ),
    rows={
        "dcgan_l2svm": Row(CHECKPOINT, "imagenet32 D features (trained by this harness)",
                           source="imagenet32", variant="imagenet32", published="dcgan_l2svm"),
        "kmeans_1layer": Row(KMEANS, "single-layer K-means features (Coates et al.), rerun by "
                             "the harness", published="kmeans_1layer"),
        "raw_pixels": Row(RAW, "harness baseline: raw pixels + the same L2-SVM"),
    },
    notes=("C is not given by the paper: the harness selects it on a validation split carved "
           "off the training images (n_valid, select_draws, C_grid are the harness's).",),
)

TABLE2 = Protocol(
    table="table2",
    evaluator="l2svm",
    columns=("err@1000", "val_err@1000"),
    fields=_COMMON + (
        Field("dataset", "svhn"),
        Field("n_valid", 10_000),
        Field("max_train", None),  # the whole labelled pool
        Field("max_test", None),  # the whole test split
        Field("per_class", 100),
        Field("select_draws", 10, kinds=_PROBE),
        Field("test_draws", 100, kinds=_PROBE + (KNN,)),
        Field("C_grid", list(AUTHORS_C_GRID), kinds=_PROBE),
        Field("evaluator", "l2svm", kinds=_PROBE),
        Field("bn", "inferred", kinds=(CHECKPOINT,)),
        Field("trials", 64, kinds=(SUPERVISED,)),
        _CKPT_DRY,
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
# Table 2's rows that are not probes of a representation: always run, not configured as models.
TABLE2_KNN = Row(KNN, "1-NN on raw pixels of the same draws", published="knn", evaluator="nn1")
TABLE2_SUPERVISED = Row(SUPERVISED, "supervised CNN with D's architecture",
                        published="supervised_cnn")

TABLE3 = Protocol(
    table="table3",
    evaluator="nn1",
    columns=("err@50k", "err@10m"),
    fields=_COMMON + (
        Field("dataset", "mnist"),
        Field("n_train", 50_000),
        Field("n_test", 10_000),
        Field("n_samples", 50_000, columns=("err@50k",)),
        Field("n_samples", 10_000_000, columns=("err@10m",)),
        _CKPT_DRY,
    ),
    rows={
        "real": Row(REAL, "1-NN on the real training images", published="real"),
        "dcgan": Row(CHECKPOINT, "class-conditional DCGAN samples", source="mnist_cond",
                     variant="mnist_cond", published="dcgan"),
        "gan": Row(CHECKPOINT, "class-conditional fully connected GAN samples", source="gan_mlp",
                   variant="gan_mlp", published="gan"),
    },
)
# column label of Table 3's n_samples -> the paper's sample count
TABLE3_SAMPLES = {"50k": 50_000, "10m": 10_000_000}

FIGURES = Protocol(
    table="figures",
    evaluator=None,  # the harness's measured numbers behind the paper's qualitative figures
    columns=(),
    fields=_COMMON[:2] + (Field("dataset", "lsun_bedroom"), Field("variant", "lsun64")),
    rows={},
)

PROTOCOLS: dict[str, Protocol] = {p.table: p for p in (TABLE1, TABLE2, TABLE3, FIGURES)}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ReproError(f"unknown protocol {name!r}; valid names: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
