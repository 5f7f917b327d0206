"""The published-numbers registry: complete, unique, and equal to the paper's tables.

The spot checks below are typed from ../shared/reference/protocol.md (the paper's tables), on
purpose independently of the table units (repro/tables).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pydantic import ValidationError

from repro.errors import ReproError
from repro.published import PublishedCell, load_figures, table_cells
from repro.tables import load_published, load_tables, protocols, table_layout


def test_ids_unique_and_well_formed():
    cells = load_published()
    # every cell a unit declares is loaded (none lost to a duplicate key), and each names one
    # of its table's declared rows and columns
    tables = load_tables()
    assert len(cells) == sum(len(t.cells) for t in tables.values())
    for cid, cell in cells.items():
        assert cell.row in tables[cell.table].rows and cell.column in tables[cell.table].columns
        assert cid == cell.id == f"{cell.table}/{cell.row}/{cell.column}"
        assert cell.unit in ("%", "units") and cell.direction in ("higher", "lower")
        assert cell.band >= 0


@pytest.mark.parametrize("cell_id,value,pm", [
    ("table3/dcgan/err@10m", 1.48, None),
    ("table3/dcgan/err@50k", 2.98, None),
    ("table3/gan/err@50k", 6.28, None),
    ("table3/gan/err@10m", 5.65, None),
    ("table3/real/err@50k", 3.1, None),
    ("table3/alignmnist/err@10m", 1.4, None),
    ("table3/infimnist/err@10m", 2.6, None),
    ("table1/dcgan_l2svm/acc", 82.8, None),
    ("table1/dcgan_l2svm/acc@400pc", 73.8, 0.4),
    ("table1/exemplar_cnn/acc", 84.3, None),
    ("table1/kmeans_1layer/max_features", 4800, None),
    ("table2/dcgan_l2svm/err@1000", 22.48, None),
    ("table2/supervised_cnn/val_err@1000", 28.87, None),
    ("table2/swwae_dropout/err@1000", 23.56, None),
    ("table2/knn/err@1000", 77.93, None),
])
def test_spot_checks_from_protocol(cell_id, value, pm):
    cell = load_published()[cell_id]
    assert cell.value == value
    assert cell.pm == pm


def test_versions_and_misquotes_are_noted():
    cells = load_published()
    assert "22.18" in cells["table2/dcgan_l2svm/err@1000"].note
    assert "80.6" in cells["table1/exemplar_cnn/acc"].note


def test_directions_and_units():
    cells = load_published()
    assert cells["table1/dcgan_l2svm/acc"].direction == "higher"
    assert cells["table3/dcgan/err@10m"].direction == "lower"
    assert cells["table1/dcgan_l2svm/max_features"].unit == "units"
    assert cells["table1/dcgan_l2svm/max_features"].informational
    assert cells["table1/dcgan_l2svm/max_features"].tolerance == 0


def test_band_is_max_of_pm_and_tolerance():
    cells = load_published()
    assert cells["table1/dcgan_l2svm/acc@400pc"].band == 1.0  # pm 0.4 < tolerance 1.0
    assert cells["table2/dcgan_l2svm/err@1000"].band == pytest.approx(1.13)


def test_table3_layout_in_paper_order():
    layout = table_layout("table3")
    assert len(layout) == len(load_tables()["table3"].rows)
    rows = [next(c for c in row if c is not None).row_label for row in layout]
    assert rows == ["AlignMNIST", "InfiMNIST", "Real Data", "GAN", "DCGAN (ours)"]
    assert layout[0][0] is None and layout[0][1].value == 1.4  # AlignMNIST: "-" at 50K
    assert [c.value for c in layout[4]] == [2.98, 1.48]


def test_table1_and_2_layouts():
    tables = load_tables()
    t1 = table_layout("table1")
    assert len(t1) == len(tables["table1"].rows)
    assert all(len(r) == len(tables["table1"].columns) and None not in r for r in t1)
    assert t1[3][0].row_label == "Exemplar CNN"
    t2 = table_layout("table2")
    assert len(t2) == len(tables["table2"].rows)
    assert t2[-1][0] is None and t2[-1][1].value == 28.87
    # the tables with published cells are the protocols that have columns
    assert list(tables) == [t for t, p in protocols().items() if p.columns]


def test_unknown_table():
    with pytest.raises(ReproError, match=f"valid names: {', '.join(load_tables())}"):
        table_layout("table4")


def test_duplicate_or_misplaced_id_is_refused():
    table = load_tables()["table3"]
    extra = PublishedCell(id="table3/dcgan/err@10m", value=1, unit="%", direction="lower",
                          tolerance=0)
    with pytest.raises(ReproError, match="appears twice"):
        table_cells("table3", table.model_copy(update={"cells": table.cells + (extra,)}))
    with pytest.raises(ReproError, match="must be table3/<row>/<column>"):
        table_cells("table3", table.model_copy(update={"cells": (
            extra.model_copy(update={"id": "table3/dcgan/err@1m"}),)}))
    assert len(table_cells("table3", table)) == len(table.cells)  # control: as declared


def test_bad_unit_is_refused():
    with pytest.raises(ValidationError, match="unit"):
        PublishedCell(id="table3/dcgan/err@10m", value=1.48, unit="pct", direction="lower",
                      tolerance=0.5)


def test_figures_registry():
    figures = load_figures()
    assert [f.number for f in figures] == list(range(1, len(figures) + 1))
    fig4 = figures[3]
    assert "fig4/latent_walk/n_jumps" in fig4.cells
    assert fig4.matches("fig4_latent_walk.png") and not figures[0].matches("fig10_albums.png")
    assert figures[8].matches("fig9_mnist_cond.png")
    assert figures[5].facts["dropped_maps"] == "~200"
