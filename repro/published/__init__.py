"""The paper's published numbers and figures, machine-readable and validated.

`paper.yaml` holds every cell of Tables 1-3 (with the tables' row and column order, as the
paper prints them); `figures.yaml` holds the figures' claims and the harness cell ids that give
each one a number. Both are read once and validated: unique ids, ids that agree with their
table/row/column, known units and directions, non-negative tolerances.
"""

from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from repro.config import validate
from repro.errors import ReproError

HERE = Path(__file__).resolve().parent
PAPER_FILE = HERE / "paper.yaml"
FIGURES_FILE = HERE / "figures.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublishedCell(_Frozen):
    """One number printed in the paper."""

    id: str
    value: float
    pm: float | None = None
    unit: Literal["%", "units"]
    direction: Literal["higher", "lower"]
    tolerance: float = Field(ge=0)
    informational: bool = False
    note: str | None = None
    # filled from the table layout by the loader
    table: str = ""
    row: str = ""
    column: str = ""
    row_label: str = ""
    column_label: str = ""

    @property
    def band(self) -> float:
        """Half-width of the 'reproduced' band: the printed +- or our tolerance, whichever is wider."""
        return max(self.pm or 0.0, self.tolerance)


class TableSpec(_Frozen):
    title: str
    caption: str = ""
    rows: dict[str, str]  # row id -> label as printed, in the paper's order
    columns: dict[str, str]  # column id -> label as printed, in the paper's order


class _PaperFile(_Frozen):
    source: str
    tables: dict[str, TableSpec]
    cells: list[PublishedCell]


class FigureSpec(_Frozen):
    id: str
    title: str
    claim: str
    facts: dict[str, str] = Field(default_factory=dict)
    cells: list[str] = Field(default_factory=list)
    files: list[str] | None = None  # globs under the figures dir; default: see `patterns`

    @property
    def number(self) -> int:
        return int(self.id.removeprefix("fig"))

    @property
    def patterns(self) -> list[str]:
        return self.files or [f"{self.id}.png", f"{self.id}_*.png", f"{self.id}-*.png"]

    def matches(self, filename: str) -> bool:
        return any(fnmatch(filename, p) for p in self.patterns)

    @model_validator(mode="after")
    def _check_id(self) -> "FigureSpec":
        if not (self.id.startswith("fig") and self.id[3:].isdigit()):
            raise ValueError(f"figure id {self.id!r} must look like fig<N>")
        for cell in self.cells:
            if not cell.startswith(f"{self.id}/"):
                raise ValueError(f"cell id {cell!r} of {self.id} must start with '{self.id}/'")
        return self


class _FiguresFile(_Frozen):
    figures: list[FigureSpec]


def _read(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ReproError(f"cannot read {path}: {err}; restore it from git") from None


@lru_cache(maxsize=4)
def _paper(path: Path = PAPER_FILE) -> _PaperFile:
    paper = validate(_PaperFile, _read(path), path.name)
    cells: list[PublishedCell] = []
    seen: set[str] = set()
    for cell in paper.cells:
        if cell.id in seen:
            raise ReproError(f"{path}: cell id {cell.id!r} appears twice; ids must be unique")
        seen.add(cell.id)
        parts = cell.id.split("/")
        table = paper.tables.get(parts[0]) if len(parts) == 3 else None
        if table is None or parts[1] not in table.rows or parts[2] not in table.columns:
            raise ReproError(
                f"{path}: cell id {cell.id!r} must be <table>/<row>/<column> with the table, "
                f"row and column declared under `tables:` (tables: {', '.join(paper.tables)})"
            )
        cells.append(cell.model_copy(update={
            "table": parts[0], "row": parts[1], "column": parts[2],
            "row_label": table.rows[parts[1]], "column_label": table.columns[parts[2]],
        }))
    return paper.model_copy(update={"cells": cells})


def load_published(path: Path = PAPER_FILE) -> dict[str, PublishedCell]:
    """Every published cell, keyed by id, in the paper's table/row/column order."""
    paper = _paper(path)
    order = {
        (t, r, c): (ti, ri, ci)
        for ti, (t, spec) in enumerate(paper.tables.items())
        for ri, r in enumerate(spec.rows)
        for ci, c in enumerate(spec.columns)
    }
    cells = sorted(paper.cells, key=lambda c: order[(c.table, c.row, c.column)])
    return {c.id: c for c in cells}


def load_tables(path: Path = PAPER_FILE) -> dict[str, TableSpec]:
    return dict(_paper(path).tables)


def paper_source(path: Path = PAPER_FILE) -> str:
    return _paper(path).source


def table_layout(table: str, path: Path = PAPER_FILE) -> list[list[PublishedCell | None]]:
    """The table as the paper prints it: rows x columns, None where the paper prints '-'."""
    tables = load_tables(path)
    if table not in tables:
        raise ReproError(f"unknown table {table!r}; valid names: {', '.join(tables)}")
    cells = load_published(path)
    spec = tables[table]
    return [[cells.get(f"{table}/{r}/{c}") for c in spec.columns] for r in spec.rows]


@lru_cache(maxsize=4)
def _figures(path: Path) -> tuple[FigureSpec, ...]:
    figures = validate(_FiguresFile, _read(path), path.name).figures
    ids = [f.id for f in figures]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ReproError(f"{path}: figure ids {dupes} appear twice; ids must be unique")
    cells = [c for f in figures for c in f.cells]
    dupes = sorted({c for c in cells if cells.count(c) > 1})
    if dupes:
        raise ReproError(f"{path}: figure cell ids {dupes} appear twice; ids must be unique")
    return tuple(sorted(figures, key=lambda f: f.number))


def load_figures(path: Path = FIGURES_FILE) -> list[FigureSpec]:
    """The paper's figures in order, with their claims and the harness cells behind them."""
    return list(_figures(path))
