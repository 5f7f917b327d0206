"""End to end: the real DVC pipeline in a scratch copy, `smoke` profile and `paper` dry run."""

from __future__ import annotations

import json

import pytest

from repro.scratch import run_pipeline
from repro.utils.io import read_cells

from conftest import REPO

pytestmark = pytest.mark.slow

TABLE3_CELLS = {"table3/real/err@50k", "table3/dcgan/err@50k", "table3/dcgan/err@10m",
                "table3/gan/err@50k", "table3/gan/err@10m"}


def _check_outputs(out, profile):
    metrics = read_cells(out / "results/metrics/table3_mnist_nn.json")
    assert set(metrics) == TABLE3_CELLS
    for cell in metrics.values():
        assert 0.0 <= cell["value"] <= 100.0
        assert cell["comparable"] is False  # never comparable outside the paper profile
        assert cell["protocol"]["profile"] == profile
    tables = {}
    for name, rows in (("table1_cifar10", {"dcgan_l2svm", "kmeans_1layer", "raw_pixels"}),
                       ("table2_svhn", {"dcgan_l2svm", "dcgan_authors", "raw_pixels", "knn",
                                        "supervised_cnn"})):
        cells = read_cells(out / f"results/metrics/{name}.json")
        assert {c.split("/")[1] for c in cells} == rows
        for cell in cells.values():
            assert cell["comparable"] is False or cell["unit"] == "units"
            assert cell["value"] is None or cell["value"] >= 0
        tables[name] = cells
    assert tables["table1_cifar10"]["table1/dcgan_l2svm/acc"]["protocol"]["feature_dim"] == 28672
    assert tables["table2_svhn"]["table2/dcgan_l2svm/err@1000"]["protocol"]["feature_dim"] == 7168
    # no authors' files beside a scratch copy: the row is reported missing, with the reason
    assert tables["table2_svhn"]["table2/dcgan_authors/err@1000"]["missing"]
    assert (out / "results/figures/table2_authors_svhn_samples.png").is_file()
    for variant in ("mnist_cond", "gan_mlp", "svhn32", "imagenet32", "lsun64"):
        assert (out / f"results/checkpoints/{variant}/seed0.pt").is_file()
        assert (out / f"results/checkpoints/{variant}/samples_final.png").is_file()
        prov = json.loads((out / f"results/provenance/train_{variant}.json").read_text())
        assert prov["platform"]["cpu_model"] and prov["platform"]["threads"] >= 1
    assert (out / "results/figures/fig9_mnist_cond.png").is_file()
    report = (out / "reports/report.md").read_text()
    assert "Table 3" in report and "not comparable" in report
    assert (out / "reports/report.pdf").read_bytes().startswith(b"%PDF")
    return metrics


def test_smoke_pipeline_end_to_end(smoke_run):
    _check_outputs(smoke_run, "smoke")


def test_paper_profile_dry_run(tmp_path):
    """The paper path (its datasets' shapes, batch sizes, file formats) on generated data."""
    out = run_pipeline(REPO, tmp_path / "paper", "paper", dry_run=True)
    metrics = _check_outputs(out, "paper")
    assert all(c["protocol"]["dry_run"] for c in metrics.values())
