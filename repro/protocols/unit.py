"""A table's declarative unit: what the shared runner (repro.protocols.runner) needs to run it.

A unit names the paper's layout and published cells (`published`), the protocol (fields, each
naming where a run's value is read; rows; the registered evaluator), the config section, the
measured columns, the scorer (how one source's rows are scored: a linear probe of frozen
features, repro.protocols.linear, or a nearest-neighbour classifier fitted on generated
samples, repro.protocols.generated), how its data are loaded, its dry-run sizes and its
protocol seeds. Each lives in one module of repro.tables and registers itself there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import torch

from repro.config import Section
from repro.published import TableSpec
from repro.published.protocol import Protocol

if TYPE_CHECKING:
    from repro.protocols.probing import Source
    from repro.protocols.runner import Run
    from repro.context import Stage


@dataclass(frozen=True)
class Column:
    """One measured column. `draws`: the section field with the number of test draws of
    `per_class` labels (None: one fit on the whole pool); `select_draws`: the same for
    choosing C; `error`: the cell is the error rate 100 (1 - acc), else the accuracy 100 acc;
    `units`: the cell is the representation's max # of feature units, not a score."""
    name: str
    draws: str | None = None
    select_draws: str | None = None
    error: bool = False
    units: bool = False


@dataclass
class TableData:
    """A table's loaded data: image sets (a representation is computed for each), their
    labels, what the run states of them (`facts`: the values protocol fields read as
    "@<fact>", e.g. the sizes), whether they are real, and where they came from. `select`:
    which rows of which sets C is chosen on (pool set, rows or None: all, validation set,
    rows), for a linear probe; `extra`: whatever else the unit's own code needs."""
    images: dict[str, torch.Tensor]
    labels: dict[str, np.ndarray]
    real: bool
    source: str
    facts: dict[str, Any] = field(default_factory=dict)
    select: tuple[str, np.ndarray | None, str, np.ndarray | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scorer:
    """How a table turns one source (a checkpoint, a baseline, a user's model) into a record
    (`compute(run, source, cache)`, JSON, kept across a kill), and one row's records, one per
    source, into its cells (`cells(run, row, [(source, record)])`)."""
    name: str
    compute: Callable[["Run", "Source", Path], dict]
    cells: Callable[["Run", str, list], dict[str, dict]]


@dataclass(frozen=True)
class PlanCounts:
    """What one row of a linear-probe table's run takes, for `python -m repro.probe`'s plan
    and time estimate (repro.probe.plan): the images whose features are computed, the SVM
    fits (`draw_fits` on draws of `draw_size` labels, one on each of the `whole` pools), and
    how the sets and fits read in words."""
    sets: str
    fits: str
    images: int
    draw_size: int
    draw_fits: int
    whole: tuple[int, ...] = ()


def split_size(dataset: str, split: str | None, cap: int | None) -> int:
    """Images a run reads from `dataset`'s `split`, at most `cap` (0: no such split)."""
    from repro.data.loading import dataset_spec

    n = dataset_spec(dataset).splits.get(split or "", 0)
    return min(n, cap) if cap else n


@dataclass(frozen=True)
class TableUnit:
    protocol: Protocol
    published: TableSpec  # the paper's layout and cells (a harness table: no cells)
    config: type[Section]  # the profile's section of the same name as the table
    metrics: str  # the metrics file's stem (dvc.yaml: ${paths.metrics}/<metrics>.json)
    columns: tuple[Column, ...]
    scorer: Scorer
    load: Callable[["Stage", Any, int, int], TableData]  # (stage, cfg, size, channels)
    cell_protocol: Callable[["Stage", Any, TableData], dict]  # what every cell's `protocol` says
    input_shape: Callable[[Any], tuple[int, int]]  # (size, channels) the images are fitted to
    # the section shrunk for a dry run: section path -> value, or a function of the value
    dry: Mapping[str, Any] = field(default_factory=dict)
    # section paths of the protocol's seeds (label draws, splits, searches): the drift gate
    # sweeps them with the training seeds, so a cell no training seed moves still has a spread
    seeds: tuple[str, ...] = ("seed",)
    notes: Callable[[Any, TableData], list[str]] = lambda cfg, data: []  # on every cell
    row_notes: Callable[[Any, str], list[str]] = lambda cfg, kind: []  # per row kind
    harness_rows: Callable[["Run"], dict[str, dict]] | None = None  # rows that are not sources
    # further stage outputs: name (the stage's --<name> PATH) -> write(run, by_row, path)
    outputs: Mapping[str, Callable[["Run", dict, Path], None]] = field(default_factory=dict)
    # (section, carved: validation carved from train) -> a linear-probe row's counts, for the
    # probe's plan; None: the probe prints no estimate for this table
    plan: Callable[[Any, bool], PlanCounts] | None = None

    @property
    def name(self) -> str:
        return self.protocol.table

    def evaluator(self, cfg: Any) -> str:
        """The registered evaluator a run fits: the section's `evaluator` where the section
        has one (a profile may name another), else the protocol's."""
        return getattr(cfg, "evaluator", None) or self.protocol.evaluator

    def shrunk(self, cfg: Any) -> Any:
        """`cfg` with the dry-run sizes applied."""
        for path, value in self.dry.items():
            cfg = _replace(cfg, path.split("."), value)
        return cfg


def _replace(node: Any, parts: list[str], value: Any) -> Any:
    old = getattr(node, parts[0])
    new = (_replace(old, parts[1:], value) if len(parts) > 1
           else value(old) if callable(value) else value)
    return node.model_copy(update={parts[0]: new})
