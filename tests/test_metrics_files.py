"""The metrics file pair: numbers only in `<name>.json` (what DVC shows), the rest of every cell
in `<name>.cells.json`; one reader returns the cells a stage wrote, unchanged."""

from __future__ import annotations

import json

import pytest

from repro.errors import ReproError
from repro.report.inputs import read_metrics_dir, read_metrics_files
from repro.utils.io import cells_path, read_cells, write_metrics


def _cells():  # FIXTURE cells in the metrics schema, not measured results
    return {
        "table3/dcgan/err@50k": {"value": 3.1, "std": 0.2, "n_runs": 3, "runs": [2.9, 3.1, 3.3],
                                 "unit": "%", "compares_to": "table3/dcgan/err@50k",
                                 "comparable": False, "protocol": {"profile": "smoke"},
                                 "protocol_diff": [{"field": "n_samples", "paper": 50000,
                                                    "run": 100}],
                                 "deviations": ["generated digits"]},
        "table3/gan/err@50k": {"value": None, "n_runs": 0, "runs": [], "unit": "%",
                               "compares_to": "table3/gan/err@50k", "comparable": False,
                               "protocol": {}, "deviations": ["not run: no checkpoint"],
                               "missing": "no checkpoint"},
    }


def test_numbers_file_is_flat_and_the_reader_returns_what_was_written(tmp_path):
    path = tmp_path / "table3_mnist_nn.json"
    write_metrics(path, _cells(), written_by={"stage": "table3", "params_hash": "abc"})
    assert json.loads(path.read_text()) == {"table3/dcgan/err@50k": 3.1}  # numbers only
    assert cells_path(path).name == "table3_mnist_nn.cells.json"
    assert read_cells(path) == _cells()
    files = read_metrics_files(tmp_path)
    assert list(files) == ["table3_mnist_nn"]  # the sibling is not a metrics file of its own
    assert files["table3_mnist_nn"].written_by == {"stage": "table3", "params_hash": "abc"}
    cell = read_metrics_dir(tmp_path)["table3_mnist_nn"]["table3/dcgan/err@50k"]
    assert (cell.value, cell.std, cell.runs) == (3.1, 0.2, [2.9, 3.1, 3.3])


def test_a_numbers_file_and_a_sibling_from_different_writes_are_refused(tmp_path):
    path = tmp_path / "t.json"
    write_metrics(path, _cells())
    path.write_text(json.dumps({"table3/dcgan/err@50k": 9.9}))
    with pytest.raises(ReproError, match="do not belong together"):
        read_cells(path)
    cells_path(path).unlink()
    with pytest.raises(ReproError, match="no sibling t.cells.json"):
        read_cells(path)
