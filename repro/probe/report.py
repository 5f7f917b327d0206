"""The probe's Markdown: the user's rows beside the paper's published rows, with a title that
names the dataset used, column headers that give the sizes used, units, the chosen C, and what
± means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.tables import load_published, load_tables
from repro.utils.io import atomic_path

BASELINES = ("raw_pixels", "real")


def _first(cells: list[dict], col: str) -> dict | None:
    return next((c for c in cells if c["id"].endswith(f"/{col}") and c["value"] is not None), None)


def column_header(table: str, col: str, cell: dict | None, paper_label: str) -> str:
    """What a column measured at the sizes used (the paper's label in brackets)."""
    if cell is None:
        return paper_label
    p = cell["protocol"]
    if col.startswith("err@") and table == "table3":
        what = f"Test error % (1-NN on {p['n_samples']:,} samples)"
    elif col == "max_features":
        what = "Max # of feature units"
    elif col == "acc":
        what = f"Accuracy % (one SVM on all {cell['n_labels']:,} training images)"
    elif col.startswith("acc@"):
        what = f"Accuracy % ({cell['n_labels']:,} labels, {cell['n_draws']} draws)"
    else:
        what = f"Test error % ({cell['n_labels']:,} labels, {cell['n_draws']} draws)"
    return f"{what} [paper: {paper_label}]"


def _value(c: dict | None) -> str:
    if c is None:
        return "-"
    if c["value"] is None:
        return f"not run ({c.get('missing')})"
    if c.get("unit") == "units":
        return f"{c['value']:,.0f}"
    return f"{c['value']:.2f}%" + (f" ± {c['std']:.2f}" if c.get("std") else "")


def _chosen_C(cells: dict[str, dict]) -> str:
    got = {col: c["protocol"]["C"] for col, c in cells.items()
           if c.get("protocol", {}).get("C") and any(v is not None for v in c["protocol"]["C"])}
    return "; ".join(f"{col}: {', '.join(f'{v:g}' for v in cs)}" for col, cs in got.items()) or "-"


def write(table: str, metrics: dict[str, dict], path: Path, *, dataset: str,
          header: list[str]) -> None:
    """`metrics`: the run's cells (id -> cell); `header`: lines on what ran, before the table."""
    spec, published = load_tables()[table], load_published()
    cols = list(spec.columns)
    cells = [{"id": cid, **c} for cid, c in metrics.items()]
    paper_title = spec.title.split(": ", 1)[-1]
    has_C = any("C" in c.get("protocol", {}) for c in cells)
    heads = [column_header(table, c, _first(cells, c), spec.columns[c]) for c in cols]
    lines = [f"## Table {table.removeprefix('table')}'s protocol on `{dataset}`: "
             f"your model beside the paper's rows (the paper: {paper_title})", "", *header, "",
             "| Row | " + " | ".join(heads) + (" | C chosen on validation" if has_C else "")
             + " | Comparable |",
             "|---" * (len(cols) + 2 + has_C) + "|"]
    rows: dict[str, dict[str, dict]] = {}
    for cid, c in metrics.items():
        _, _, row, col = cid.split("/")
        rows.setdefault(row, {})[col] = c
    # your model first, then the harness's baselines (raw pixels, real data)
    for row, by_col in sorted(rows.items(), key=lambda kv: kv[0] in BASELINES):
        fields = sorted({d["field"] for c in by_col.values() for d in c.get("protocol_diff", [])})
        lines.append(f"| **{row}** (measured on {dataset}) | "
                     + " | ".join(_value(by_col.get(c)) for c in cols)
                     + (f" | {_chosen_C(by_col)}" if has_C else "")
                     + f" | {'differs: ' + ', '.join(fields) if fields else 'protocol followed'} |")
    for row, label in spec.rows.items():
        vals = [published.get(f"{table}/{row}/{c}") for c in cols]
        if any(vals):
            lines.append(f"| {label} (paper) | " + " | ".join(
                "-" if v is None else f"{v.value:g}{v.unit if v.unit == '%' else ''}"
                + (f" ± {v.pm:g}" if v.pm else "") for v in vals)
                + (" | -" if has_C else "") + " | |")
    lines += ["", _legend(cells)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _legend(cells: list[dict[str, Any]]) -> str:
    draws = sorted({c["n_draws"] for c in cells
                    if c.get("n_draws", 1) > 1 and c["value"] is not None})
    seeds = sorted({c["n_runs"] for c in cells if c.get("n_runs", 1) > 1 and not c.get("n_draws")})
    said = []
    if draws:
        said.append("a measured ± is the standard deviation of the score over the test draws "
                    f"({', '.join(map(str, draws))} draws of labelled images; the cell's `ci95` "
                    "holds 1.96 x that, the 95% band the authors quote for Table 2)")
    if seeds:
        said.append("a measured ± is the standard deviation over the generator's seeds")
    said.append("a paper row's ± is the one the paper prints")
    return "± : " + "; ".join(said) + ". Values are percentages where marked %."
