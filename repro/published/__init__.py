"""The paper's published numbers and figures, machine-readable and validated.

Each table's printed layout and cells are declared in its unit (repro.tables; every cell of
Tables 1-3, the baselines the harness does not rerun included) and validated here: unique
ids, ids that agree with their table/row/column, known units and directions, non-negative
tolerances. `figures.yaml` holds the figures' claims and the harness cell ids that give each
one a number. Numbers declared as published are the PAPER's, never measured ones.
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
FIGURES_FILE = HERE / "figures.yaml"
SOURCE = "arXiv:1511.06434v2"  # the version of the paper whose numbers the units declare


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublishedCell(_Frozen):
    """One number printed in the paper.

    id: <table>/<row>/<column>, stable (metrics files and the report refer to it); value and
    pm: the printed number and its printed +- in `unit` ("%": percentage points, "units": a
    count); direction: which way is better; tolerance: the half-width of the "reproduced" band,
    used as max(pm, tolerance) (the paper gives no +- for most cells: each unit says why it
    chose its tolerances); informational: a property of a method, not a measurement; note:
    where versions or summaries of the paper disagree."""

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
    """A table as the paper prints it: its layout and its cells (empty for a harness table)."""
    title: str
    caption: str = ""
    rows: dict[str, str]  # row id -> label as printed, in the paper's order
    columns: dict[str, str]  # column id -> label as printed, in the paper's order
    cells: tuple[PublishedCell, ...] = ()


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


def table_cells(name: str, table: TableSpec) -> list[PublishedCell]:
    """Table `name`'s cells, checked against its layout and filled with their labels."""
    cells: list[PublishedCell] = []
    seen: set[str] = set()
    for cell in table.cells:
        if cell.id in seen:
            raise ReproError(f"table {name}: cell id {cell.id!r} appears twice; ids must be unique")
        seen.add(cell.id)
        parts = cell.id.split("/")
        if len(parts) != 3 or parts[0] != name or parts[1] not in table.rows \
                or parts[2] not in table.columns:
            raise ReproError(f"table {name}: cell id {cell.id!r} must be {name}/<row>/<column> "
                             f"with a row of {list(table.rows)} and a column of "
                             f"{list(table.columns)}")
        cells.append(cell.model_copy(update={
            "table": name, "row": parts[1], "column": parts[2],
            "row_label": table.rows[parts[1]], "column_label": table.columns[parts[2]]}))
    return cells


def paper_source() -> str:
    return SOURCE


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
