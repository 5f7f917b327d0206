"""End to end: the real DVC pipeline in a scratch copy, `smoke` profile and `paper` dry run."""

from __future__ import annotations

import json

import pytest

from repro.scratch import run_pipeline

from conftest import REPO

pytestmark = pytest.mark.slow

TABLE3_CELLS = {"table3/real/err@50k", "table3/dcgan/err@50k", "table3/dcgan/err@10m",
                "table3/gan/err@50k", "table3/gan/err@10m"}


def _check_outputs(out, profile):
    metrics = json.loads((out / "results/metrics/table3_mnist_nn.json").read_text())
    assert set(metrics) == TABLE3_CELLS
    for cell in metrics.values():
        assert 0.0 <= cell["value"] <= 100.0
        assert cell["comparable"] is False  # never comparable outside the paper profile
        assert cell["protocol"]["profile"] == profile
    for variant in ("mnist_cond", "gan_mlp"):
        assert (out / f"results/checkpoints/{variant}/seed0.pt").is_file()
        assert (out / f"results/checkpoints/{variant}/samples_final.png").is_file()
        assert (out / f"results/provenance/train_{variant}.json").is_file()
    assert (out / "results/figures/fig9_mnist_cond.png").is_file()
    report = (out / "reports/report.md").read_text()
    assert "Table 3" in report and "not comparable" in report
    assert (out / "reports/report.pdf").read_bytes().startswith(b"%PDF")
    return metrics


def test_smoke_pipeline_end_to_end(tmp_path):
    out = run_pipeline(REPO, tmp_path / "smoke", "smoke")
    _check_outputs(out, "smoke")


def test_paper_profile_dry_run(tmp_path):
    """The paper path (its datasets' shapes, batch sizes, file formats) on generated data."""
    out = run_pipeline(REPO, tmp_path / "paper", "paper", dry_run=True)
    metrics = _check_outputs(out, "paper")
    assert all(c["protocol"]["dry_run"] for c in metrics.values())
