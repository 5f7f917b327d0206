"""The paper's evaluation protocols, declared once, as data (../shared/reference/protocol.md).

A table's protocol (declared in its unit, repro.tables) lists its rows (what each row probes
or samples: a checkpoint folder and the variant it must hold, or a harness baseline) and its
protocol fields, each with the paper's value and the place a run's value is read from (a path
in the table's config section, a fact of the run, or a fact each row states). The sections'
config defaults are read from here, so a profile only overrides fields; a run's protocol is
read field by field from its config, never written out by hand; and a cell's comparability is
derived from the difference, field by field (`protocol_diff`), never from the profile's name.

A field applies to some row kinds (`kinds`, None: every row) and some columns (`columns`,
None: every column). Where the paper does not say (e.g. how Table 1's C was chosen), the value
is the harness's declared reading, marked `harness=True`: it is still part of the protocol, so
a run that changes it is told so on every cell it affects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from repro.errors import ReproError

# The authors' LinearSVC grid for SVHN (dcgan_code/svhn/svhn_semisup_analysis.py).
AUTHORS_C_GRID = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)

# Row kinds: what produces a row's numbers.
CHECKPOINT = "checkpoint"  # a discriminator (Tables 1, 2) or generator (Table 3) checkpoint
RAW = "raw_pixels"  # the raw pixels themselves (a harness baseline)
KMEANS = "kmeans"  # single-layer K-means features (Coates et al.), fitted by the harness
KNN = "knn"  # 1-NN on raw pixels of the labelled draws (Table 2's KNN row)
SUPERVISED = "supervised"  # a CNN with D's architecture trained on the labels (Table 2)
REAL = "real"  # 1-NN fitted on real training images (Table 3's Real Data row)

# `Field.reads` for a value each row states itself (its checkpoint's facts, its sample count)
ROW = "@row"


@dataclass(frozen=True)
class Field:
    name: str
    paper: Any
    kinds: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    harness: bool = False  # the paper does not say; this is the harness's declared choice
    # Where a run's value is read: a path in the table's config section ("svm.C_grid"; None:
    # the field's own name), "@<fact>" for a fact of the run (the loaded sizes, real data, dry
    # run), or ROW for a value each row states.
    reads: str | None = None

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

    def run_values(self, section: Any, facts: Mapping[str, Any]) -> dict[str, Any]:
        """The run's value of every field its rows share, read where each field says (`facts`:
        the run's facts by name); the ROW fields are added by each row."""
        out: dict[str, Any] = {}
        for f in self.fields:
            where = f.reads or f.name
            if where == ROW:
                continue
            if where.startswith("@"):
                if where[1:] not in facts:
                    raise ReproError(f"{self.table}: protocol field {f.name!r} reads the run fact "
                                     f"{where[1:]!r}, which the table's loader does not state "
                                     f"(it states {', '.join(facts)})")
                out[f.name] = facts[where[1:]]
            else:
                out[f.name] = config_value(section, where, f"{self.table} protocol field {f.name!r}")
        return out

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


def config_value(section: Any, path: str, who: str) -> Any:
    """The value at dotted `path` in a config section (a list as a plain list)."""
    node = section
    for part in path.split("."):
        if not hasattr(node, part):
            raise ReproError(f"{who} reads {path!r}, which {type(section).__name__} does not have; "
                             "fix the field's `reads` in the table's unit (repro.tables)")
        node = getattr(node, part)
    return list(node) if isinstance(node, tuple) else node


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
COMMON = (Field("real_data", True, reads="@real_data"), Field("dry_run", False, reads="@dry_run"),
          Field("preprocessing", [], reads="@preprocessing"))
CKPT_DRY = Field("checkpoint_dry_run", False, kinds=(CHECKPOINT,), reads=ROW)

FIGURES = Protocol(
    table="figures",
    evaluator=None,  # the harness's measured numbers behind the paper's qualitative figures
    columns=(),
    fields=COMMON[:2] + (Field("dataset", "lsun_bedroom"), Field("variant", "lsun64")),
    rows={},
)
