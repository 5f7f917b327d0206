"""The report's own pictures (matplotlib, Agg): a forest plot per table, training losses.

Forest plot: one line per published result cell that has a measured value; the published value
as a black tick with its reproduction band (max(paper's ±, tolerance)) shaded, the measured value
as a dot with ± its std (when it has one), coloured by verdict. Informational cells are left out
(the report lists them apart). Training: DVCLive's loss series (results/live/<model>/plots/
metrics/train/loss_{d,g}.tsv), one panel per model.

PNGs are written without a timestamp or software tag, so the same inputs give the same bytes.
"""

from __future__ import annotations

import csv
from pathlib import Path

from repro.errors import ReproError
from repro.report.build import (
    NOT_COMPARABLE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, CellVerdict, TableSection,
)
from repro.utils.io import save_figure

COLOURS = {REPRODUCED: "#1a9850", NOT_REPRODUCED: "#d73027", NOT_COMPARABLE: "#7f7f7f",
           NOT_RUN: "#bdbdbd"}
LOSSES = ("loss_d", "loss_g")
_PNG = {"dpi": 150, "metadata": {"Software": None}}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plotted_rows(section: TableSection) -> list[CellVerdict]:
    """The rows a forest plot shows: result cells (not informational) with a measured value."""
    return [r for r in section.rows if not r.published.informational and r.measured is not None
            and r.measured.cell.value is not None]


def forest_plot(section: TableSection, path: Path) -> bool:
    """Draw `section`'s forest plot to `path`; False (nothing written) when no row has a value."""
    rows = plotted_rows(section)
    if not rows:
        return False
    fig = _figure(7.0, 0.9 + 0.32 * len(rows))
    ax = fig.add_subplot()
    for y, row in enumerate(reversed(rows)):
        pub, cell = row.published, row.measured.cell
        ax.fill_betweenx([y - 0.3, y + 0.3], pub.value - pub.band, pub.value + pub.band,
                         color="#c6dbef", linewidth=0)
        ax.plot([pub.value, pub.value], [y - 0.3, y + 0.3], color="black", linewidth=1.5)
        ax.errorbar(cell.value, y, xerr=cell.std or 0, fmt="o", markersize=5, capsize=3,
                    color=COLOURS[row.verdict])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.published.row_label}: {r.published.column_label}"
                        for r in reversed(rows)], fontsize=7)
    unit = rows[0].published.unit
    ax.set_xlabel(f"{unit}: published = black tick, its band blue; measured = dot", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", color="#eeeeee")
    seen = [v for v in COLOURS if any(r.verdict == v for r in rows)]
    handles = [ax.scatter([], [], color=COLOURS[v], label=v) for v in seen]
    ax.legend(handles=handles, fontsize=6.5, loc="best", frameon=False)
    ax.set_title(section.spec.title.split(":")[0], fontsize=8, loc="left")
    save_figure(fig, path, **_PNG)
    return True


def read_series(path: Path, column: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one DVCLive TSV; a file without `step` and `column` is an error."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if reader.fieldnames is None or not {"step", column} <= set(reader.fieldnames):
            raise ReproError(f"{path} must have the columns step and {column} (DVCLive); "
                             "rerun the training stage that writes it")
        rows = list(reader)
    try:
        return [float(r["step"]) for r in rows], [float(r[column]) for r in rows]
    except (TypeError, ValueError) as err:
        raise ReproError(f"{path}: a row is not numeric ({err}); rerun its training stage") from None


def live_models(live_dir: Path) -> list[str]:
    """Models under `live_dir` that logged both losses, in name order."""
    if not live_dir.is_dir():
        return []
    return [d.name for d in sorted(live_dir.iterdir())
            if all((d / "plots/metrics/train" / f"{k}.tsv").is_file() for k in LOSSES)]


def training_plot(live_dir: Path, path: Path) -> list[str]:
    """Every model's D and G loss per step, one panel each, to `path` -> the models drawn."""
    models = live_models(live_dir)
    if not models:
        return []
    cols = min(3, len(models))
    n_rows = -(-len(models) // cols)
    fig = _figure(7.0, 1.9 * n_rows)
    for i, model in enumerate(models):
        ax = fig.add_subplot(n_rows, cols, i + 1)
        for key, colour in zip(LOSSES, ("#2166ac", "#b2182b")):
            steps, values = read_series(live_dir / model / "plots/metrics/train" / f"{key}.tsv", key)
            ax.plot(steps, values, color=colour, linewidth=1, label=key.replace("loss_", ""))
        ax.set_title(model, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("step", fontsize=6)
        if i == 0:
            ax.legend(fontsize=6, frameon=False)
    save_figure(fig, path, **_PNG)
    return models
