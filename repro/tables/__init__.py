"""The tables: one unit per table, each a module of this package that registers itself.

A unit (repro.protocols.unit.TableUnit) declares everything about its table: the paper's
layout and published cells, the protocol (fields, each naming where a run's value is read;
rows; the evaluator), the config section, the scorer that runs on the shared runner
(repro.protocols.runner), the dry-run sizes and the protocol seeds. This registry feeds the
stage (`python -m repro.stages.table NAME`), `python -m repro.probe`, the drift gate's seed
sweep and the report; `tests/test_tables.py` keeps dvc.yaml's table stages in step with it.
A new table is its module here plus its stage in dvc.yaml.
"""

from __future__ import annotations

from repro.errors import ReproError
from repro.published import PublishedCell, TableSpec, table_cells
from repro.published.protocol import FIGURES, Protocol
from repro.registry import Registry

# every public module of this package registers one table
TABLES = Registry("table", providers=("repro.tables.*",))


def units() -> dict:
    """name -> TableUnit, every registered table."""
    return {name: TABLES.get(name) for name in TABLES}


def protocols() -> dict[str, Protocol]:
    """Every protocol by name: each table's and the figures'."""
    return {**{name: unit.protocol for name, unit in units().items()}, FIGURES.table: FIGURES}


def get_protocol(name: str) -> Protocol:
    known = protocols()
    if name not in known:
        raise ReproError(f"unknown protocol {name!r}; valid names: {', '.join(known)}")
    return known[name]


def load_tables() -> dict[str, TableSpec]:
    """Each table as the paper prints it (a harness table: its own layout, no cells)."""
    return {name: unit.published for name, unit in units().items()}


def load_published() -> dict[str, PublishedCell]:
    """Every published cell, keyed by id, in table/row/column order."""
    out: dict[str, PublishedCell] = {}
    for name, table in load_tables().items():
        order = {(r, c): (ri, ci) for ri, r in enumerate(table.rows)
                 for ci, c in enumerate(table.columns)}
        for cell in sorted(table_cells(name, table), key=lambda c: order[(c.row, c.column)]):
            out[cell.id] = cell
    return out


def table_layout(table: str) -> list[list[PublishedCell | None]]:
    """The table as the paper prints it: rows x columns, None where the paper prints '-'."""
    tables = load_tables()
    if table not in tables:
        raise ReproError(f"unknown table {table!r}; valid names: {', '.join(tables)}")
    cells = load_published()
    spec = tables[table]
    return [[cells.get(f"{table}/{r}/{c}") for c in spec.columns] for r in spec.rows]
