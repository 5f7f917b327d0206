"""`python -m repro.report`: verdicts, layout, missing inputs, PDF, comparison, golden Markdown.

Golden file: tests/golden/report_smoke.md is the Markdown of the fixed fixture below. After an
intended change to the report, regenerate it and review the diff:

    REPRO_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_report.py -k golden

The metrics and provenance here are hand-written FIXTURE data in the metrics schema (not
measured results); every field that would vary between runs (dates, git revision, versions) is
fixed here, so the golden file is stable.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from repro.errors import ReproError
from repro.tables import load_published, load_tables
from repro.report.__main__ import main, parse_args, run
from repro.report.build import (
    NOT_COMPARABLE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, build_report,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "report_smoke.md"


def _runs(value, std, n_runs):
    """Runs whose mean is `value` and whose standard deviation is `std` (the report derives
    both from the runs and refuses a cell whose summaries disagree with them)."""
    if n_runs < 2 or not std:
        return [value] * n_runs
    z = np.arange(n_runs) - (n_runs - 1) / 2
    return [float(value + std * x) for x in z / z.std(ddof=1)]


def _cell(value, compares_to, comparable=True, std=None, n_runs=1, unit="%", protocol=None,
          deviations=None):
    return {"value": value, "std": std, "n_runs": n_runs, "unit": unit,
            "seeds": list(range(n_runs)), "runs": _runs(value, std, n_runs), "compares_to": compares_to,
            "comparable": comparable, "protocol": protocol or {}, "deviations": deviations or []}


PAPER = {"data_source": "real", "profile": "paper"}

TABLE3 = {
    # 3.20 vs 2.98: inside the 0.5 pp band
    "table3/dcgan/err@50k": _cell(3.2, "table3/dcgan/err@50k", std=0.2, n_runs=3,
                                  protocol={**PAPER, "n_samples": 50000}),
    # 2.50 vs 1.48: outside
    "table3/dcgan/err@10m": _cell(2.5, "table3/dcgan/err@10m",
                                  protocol={**PAPER, "n_samples": 10000000}),
    # not the paper's protocol
    "table3/gan/err@50k": _cell(9.0, "table3/gan/err@50k", comparable=False,
                                protocol={"data_source": "generated", "n_samples": 1000,
                                          "profile": "smoke"},
                                deviations=["generated digits; 1,000 samples"]),
    # exactly on the band's edge (5.65 + 0.5): reproduced
    "table3/gan/err@10m": _cell(6.15, "table3/gan/err@10m", protocol=PAPER),
    # a harness-only cell
    "table3/raw_pixels/err@50k": _cell(4.4, None, comparable=False, protocol=PAPER),
    "fig9/mnist_samples/nn_train_over_heldout_l2": _cell(1.03, None, comparable=False,
                                                          unit="ratio"),
}
TABLE2 = {
    "table2/dcgan_l2svm/err@1000": _cell(
        22.9, "table2/dcgan_l2svm/err@1000", std=0.6, n_runs=100,
        protocol={"data_source": "authors' checkpoint", "n_labels": 1000, "profile": "paper"}),
    # a second measurement of the same published cell: a "(harness)" row
    "table2/dcgan_l2svm_retrained/err@1000": _cell(
        31.5, "table2/dcgan_l2svm/err@1000", comparable=False, n_runs=1,
        protocol={"data_source": "real", "n_labels": 1000, "profile": "demo"},
        deviations=["retrained 5 epochs, not 200"]),
}
PROVENANCE = {
    "stage": "table3", "profile": "paper", "dry_run": False, "params_hash": "0123abcd4567",
    "git": {"revision": "a" * 40, "dirty": False}, "seeds": [0, 1, 2], "device": "cpu",
    "libraries": {"python": "3.11.0", "torch": "2.14.1", "numpy": "2.0.0"},
    "wall_time_s": 12.5, "started_at": "2025-01-01T00:00:00Z",
    "deviations": ["smoke: generated digits"],
}


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def make_results(root: Path, table3=TABLE3, table2=TABLE2, provenance=PROVENANCE) -> Path:
    results = root / "results"
    if table3 is not None:
        _write(results / "metrics" / "table3_mnist_nn.json", table3)
    if table2 is not None:
        _write(results / "metrics" / "table2_svhn.json", table2)
    if provenance is not None:
        _write(results / "provenance" / "table3.json", provenance)
    figures = results / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    import matplotlib.image

    img = np.linspace(0, 1, 16 * 48).reshape(16, 48)
    for name in ("fig9_mnist_cond.png", "loss_curve.png"):
        matplotlib.image.imsave(figures / name, img, cmap="gray")
    return results


def _report(results: Path, **kw):
    return build_report(results / "metrics", results / "provenance", results / "figures", **kw)


def _verdicts(report) -> dict[str, str]:
    return {r.published.id: r.verdict for t in report.tables for r in t.rows}


def _cli(root: Path, *extra: str) -> Path:
    res = root / "results"
    main(["--metrics", str(res / "metrics"), "--provenance", str(res / "provenance"),
          "--figures", str(res / "figures"), "--out", str(root / "reports"), *extra])
    return root / "reports"


def test_verdict_rules(tmp_path: Path):
    v = _verdicts(_report(make_results(tmp_path)))
    assert v["table3/dcgan/err@50k"] == REPRODUCED
    assert v["table3/dcgan/err@10m"] == NOT_REPRODUCED
    assert v["table3/gan/err@50k"] == NOT_COMPARABLE
    assert v["table3/gan/err@10m"] == REPRODUCED  # |diff| == band
    assert v["table3/real/err@50k"] == NOT_RUN
    assert v["table2/dcgan_l2svm/err@1000"] == REPRODUCED  # 0.42 pp, band 1.13
    assert all(v[c] == NOT_RUN for c in v if c.startswith("table1/"))


def test_unit_mismatch_is_not_comparable(tmp_path: Path):
    results = make_results(tmp_path, table3={
        "table3/dcgan/err@50k": _cell(0.0298, "table3/dcgan/err@50k", unit="fraction")})
    row = _report(results).tables[2].rows[-2]
    assert row.verdict == NOT_COMPARABLE and "unit" in row.reason


def test_protocol_diff_is_shown_on_the_not_comparable_row(tmp_path: Path):
    cell = {**_cell(9.0, "table3/gan/err@50k", comparable=False),
            "protocol_diff": [{"field": "n_samples", "paper": 50000, "run": 1000}]}
    results = make_results(tmp_path, table3={"table3/gan/err@50k": cell})
    out = (_cli(tmp_path) / "report.md").read_text()
    line = next(ln for ln in out.splitlines() if ln.startswith("| GAN") and "50K" in ln)
    assert "not comparable (a)" in line and len(line) < 300  # the detail is a footnote away
    assert "(a) protocol differs in n_samples" in out
    appendix = out[out.index("## Appendix"):]
    assert "differs from the paper: n_samples 1,000 (paper 50,000)" in appendix
    assert results.is_dir()


def test_markdown_tables_and_sections(tmp_path: Path):
    make_results(tmp_path)
    md = (_cli(tmp_path, "--format", "md") / "report.md").read_text()
    t3 = md[md.index("## Table 3"):md.index("## Figures")]
    for label in ("AlignMNIST", "InfiMNIST", "Real Data", "| GAN:", "DCGAN (ours)"):
        assert label in t3
    # rows in the paper's order
    assert t3.index("AlignMNIST") < t3.index("Real Data") < t3.index("DCGAN (ours)")
    dcgan = [line for line in t3.splitlines() if line.startswith("| DCGAN (ours)")]
    assert "reproduced" in dcgan[0] and "3.20% ± 0.20 (n=3)" in dcgan[0]
    assert "not reproduced" in dcgan[1] and "+1.02 pp (worse)" in dcgan[1]
    assert "n_samples=10,000,000" in md[md.index("## Appendix"):]
    assert "table3_mnist_nn:table3/raw_pixels/err@50k" in t3  # harness row
    t2 = md[md.index("## Table 2"):md.index("## Table 3")]
    assert "table2_svhn:table2/dcgan_l2svm_retrained/err@1000" in t2
    t1 = md[md.index("## Table 1"):md.index("## Table 2")]
    # counts from the published registry: every Table 1 result cell is not run here
    cells = load_published().values()
    results = [c for c in cells if not c.informational]
    t1_results = sum(c.table == "table1" for c in results)
    assert "**Not run**" in t1 and t1.count("| not run ") == t1_results
    # parameter counts: shown, not results
    assert t1.count("| informational ") == sum(c.table == "table1" for c in cells) - t1_results
    assert (f"Of {len(results)} published result cells: 3 reproduced, 1 not reproduced, "
            f"1 not comparable, {len(results) - 5} not run. "
            f"{len(cells) - len(results)} informational cells") in md
    assert "![Figure 9 (fig9_mnist_cond.png)](../results/figures/fig9_mnist_cond.png)" in md
    assert "loss_curve.png" in md and "| fig9/mnist_samples/nn_train_over_heldout_l2 | 1.03" in md
    assert "- retrained 5 epochs, not 200" in md and "**table3**: smoke: generated digits" in md
    assert "aaaaaaaaaaaa" in md and "numpy" in md


def test_missing_inputs_give_not_run(tmp_path: Path):
    reports = _cli(tmp_path, "--format", "md")  # nothing under tmp_path/results at all
    md = (reports / "report.md").read_text()
    assert "nothing has been run" in md
    assert md.count("**Not run**: no metrics file") == len(load_tables())
    assert "no provenance files" in md
    assert f"{sum(not c.informational for c in load_published().values())} not run" in md


def test_pdf_written(tmp_path: Path):
    make_results(tmp_path)
    reports = _cli(tmp_path, "--format", "pdf")
    assert (reports / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert not (reports / "report.md").exists()
    # no temporary left; the charts the PDF embeds lie beside it
    assert sorted(p.name for p in reports.iterdir()) == ["report.pdf", "report_files"]
    assert not [p for p in reports.rglob("*") if p.name.endswith(".tmp")]


def test_compare_two_directories(tmp_path: Path):
    make_results(tmp_path / "old")
    changed = dict(TABLE3)
    changed["table3/dcgan/err@50k"] = _cell(3.6, "table3/dcgan/err@50k", protocol=PAPER)
    make_results(tmp_path / "new", table3=changed)
    md = (_cli(tmp_path / "new", "--format", "md", "--compare", str(tmp_path / "old" / "results"))
          / "report.md").read_text()
    section = md[md.index("## Comparison with"):]
    line = next(l for l in section.splitlines() if l.startswith("| table3/dcgan/err@50k"))
    assert "3.20% ± 0.20 (n=3)" in line and "3.60% (n=1)" in line
    assert "+0.40 pp" in line and "reproduced → not reproduced" in line
    assert "same (not reproduced)" in section


def test_compare_git_revision(tmp_path: Path, monkeypatch):
    repo = tmp_path / "repo"
    make_results(repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "results"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], cwd=repo, check=True)
    changed = dict(TABLE3)
    changed["table3/dcgan/err@10m"] = _cell(1.6, "table3/dcgan/err@10m", protocol=PAPER)
    _write(repo / "results" / "metrics" / "table3_mnist_nn.json", changed)
    monkeypatch.chdir(repo)
    main(["--format", "md", "--compare", "HEAD"])
    md = (repo / "reports" / "report.md").read_text()
    assert "## Comparison with git revision HEAD (" in md
    assert "not reproduced → reproduced" in md and "-0.90 pp" in md
    with pytest.raises(SystemExit) as exit_info:
        main(["--format", "md", "--compare", "no-such-rev"])
    assert exit_info.value.code == 2


def test_malformed_json_names_the_file(tmp_path: Path):
    results = make_results(tmp_path)
    bad = results / "metrics" / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ReproError, match="broken.json"):
        run(parse_args(["--metrics", str(results / "metrics"), "--out", str(tmp_path / "r")]))
    bad.write_text(json.dumps({"table3/x/y": {"comparable": True}}))  # no value
    with pytest.raises(ReproError, match=r"broken.json: cell 'table3/x/y'.*value"):
        _report(results)
    bad.write_text(json.dumps({"t/x/y": _cell(1.0, "table9/nope/err")}))
    with pytest.raises(ReproError, match="unknown published cell 'table9/nope/err'"):
        _report(results)


def test_cli_error_exit_code(tmp_path: Path, capsys):
    results = make_results(tmp_path)
    (results / "metrics" / "broken.json").write_text("[1, 2]")
    with pytest.raises(SystemExit) as exit_info:
        _cli(tmp_path, "--format", "md")
    assert exit_info.value.code == 2
    assert "broken.json" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "report.md").exists()


def test_golden_markdown(tmp_path: Path, monkeypatch):
    make_results(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths in the report do not depend on tmp_path
    main(["--format", "md"])
    md = (tmp_path / "reports" / "report.md").read_text()
    if os.environ.get("REPRO_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(md)
    assert GOLDEN.is_file(), "golden file missing: REPRO_REGEN_GOLDEN=1 pytest tests/test_report.py"
    assert md == GOLDEN.read_text(), (
        "report.md differs from tests/golden/report_smoke.md; if intended, regenerate with "
        "REPRO_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_report.py -k golden and review the diff"
    )
