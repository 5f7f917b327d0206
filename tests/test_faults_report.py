"""Fault audit (issue 32), finding 3: the report trusted what it should derive.

Setting `"comparable": true, "protocol_diff": []` on the committed Table 3 cells turned five
"not comparable" cells into verdicts; an edited number passed once `numbers_sha256` was
recomputed. The report now recomputes the summaries from the facts (repro.report.derive) and
a content digest covers every field it reads (repro.utils.io).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from repro.errors import ReproError
from repro.report.__main__ import main as report_main
from repro.report.inputs import read_metrics_dir
from repro.utils.io import cells_path, write_metrics

from conftest import REPO

TABLE3 = "table3_mnist_nn"


@pytest.fixture
def results(tmp_path) -> Path:
    """The committed metrics and provenance, copied (the pipeline's own outputs)."""
    for name in ("metrics", "provenance"):
        shutil.copytree(REPO / "results" / name, tmp_path / name)
    return tmp_path


def _report(results: Path, capsys) -> tuple[int, str]:
    try:
        report_main(["--metrics", str(results / "metrics"), "--provenance",
                     str(results / "provenance"), "--figures", str(results / "figures"),
                     "--live", str(results / "live"), "--out", str(results / "out"),
                     "--bench", str(results / "bench.json"), "--format", "md"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def _edit_cells(results: Path, edit) -> None:
    path = cells_path(results / "metrics" / f"{TABLE3}.json")
    doc = json.loads(path.read_text())
    for cell in doc["cells"].values():
        edit(cell)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def test_committed_metrics_pass_the_derivation(results, capsys):
    """Control: the pipeline's own files pass, so a refusal below is the edit's doing."""
    assert len(read_metrics_dir(results / "metrics")[TABLE3]) == 5
    code, err = _report(results, capsys)
    assert code == 0, err
    assert "not comparable" in (results / "out" / "report.md").read_text()


def test_flipped_comparable_flag_is_refused(results, capsys):
    cells = read_metrics_dir(results / "metrics")[TABLE3]
    assert not any(c.comparable for c in cells.values())
    _edit_cells(results, lambda c: c.update(comparable=True, protocol_diff=[]))
    code, err = _report(results, capsys)
    assert code == 2 and not (results / "out" / "report.md").exists()
    assert len(err.strip().splitlines()) == 1, err
    assert "is marked comparable with an empty protocol_diff, but its protocol states" in err
    assert "protocol: dataset = 'mnist_5k' (paper: 'mnist')" in err
    assert "rerun the stage that writes it" in err


def test_flag_flipped_but_diff_kept_is_refused(results):
    _edit_cells(results, lambda c: c.update(comparable=True))
    with pytest.raises(ReproError, match="is marked comparable but its protocol_diff names"):
        read_metrics_dir(results / "metrics")


def test_edited_number_with_recomputed_digest_is_refused(results, capsys):
    numbers_path = results / "metrics" / f"{TABLE3}.json"
    numbers = json.loads(numbers_path.read_text())
    cell = "table3/dcgan/err@50k"
    original = numbers[cell]
    numbers[cell] = round(original / 10, 4)  # the audit's edit: 18.20 -> 1.82
    text = json.dumps(numbers, indent=2, sort_keys=True) + "\n"
    numbers_path.write_text(text)
    sibling = cells_path(numbers_path)
    doc = json.loads(sibling.read_text())
    doc["numbers_sha256"] = hashlib.sha256(text.encode()).hexdigest()[:16]  # as the user did
    sibling.write_text(json.dumps(doc))
    code, err = _report(results, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    runs = json.loads(sibling.read_text())["cells"][cell]["runs"]
    assert f"cell '{cell}' holds value {numbers[cell]:.4g}" in err
    assert f"but the mean of its runs {[round(r, 2) for r in runs]} is {original:.4g}" in err


def _fixture_cells() -> dict:  # FIXTURE cells in the metrics schema, not measured results
    return {"table3/dcgan/err@50k": {
        "value": 3.1, "std": 0.2, "n_runs": 3, "runs": [2.9, 3.1, 3.3], "seeds": [0, 1, 2],
        "unit": "%", "compares_to": "table3/dcgan/err@50k", "comparable": False,
        "protocol": {"profile": "smoke", "n_samples": 1000},
        "protocol_diff": [{"field": "n_samples", "paper": 50000, "run": 1000}],
        "deviations": ["protocol: n_samples = 1000 (paper: 50000)"]}}


@pytest.mark.parametrize("field, edit", [
    ("deviations", lambda c: c.update(deviations=[])),
    ("unit", lambda c: c.update(unit="ratio")),
    ("compares_to", lambda c: c.update(compares_to="table3/gan/err@50k")),
    ("protocol", lambda c: c["protocol"].update(profile="paper")),
])
def test_content_digest_covers_every_field_the_report_reads(tmp_path, field, edit):
    path = tmp_path / f"{TABLE3}.json"
    write_metrics(path, _fixture_cells(), written_by={"stage": "table3"})
    assert read_metrics_dir(tmp_path)[TABLE3]  # control: as written, it reads back
    doc = json.loads(cells_path(path).read_text())
    edit(doc["cells"]["table3/dcgan/err@50k"])
    cells_path(path).write_text(json.dumps(doc))
    with pytest.raises(ReproError, match="were edited after the stage wrote them "
                                         r"\(their content_sha256 does not match"):
        read_metrics_dir(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(std=0.5), "holds std 0.5, but the standard deviation of its runs"),
    (lambda c: c.update(n_runs=5), "says n_runs = 5 but holds 3 runs"),
    (lambda c: c.update(runs=[9.0, 9.0, 9.0]), "holds value 3.1, but the mean of its runs"),
])
def test_summaries_disagreeing_with_the_runs_are_refused(tmp_path, edit, message):
    cells = _fixture_cells()
    edit(cells["table3/dcgan/err@50k"])
    (tmp_path / "t.json").write_text(json.dumps(cells))  # a whole-cells file: no digest to trip
    with pytest.raises(ReproError, match=message):
        read_metrics_dir(tmp_path)
