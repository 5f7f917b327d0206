"""Table 3's learning curve: the validation carve, the per-count errors, the report section."""

from __future__ import annotations

import pytest
import torch

from repro.data.base import ImageSet
from repro.errors import ReproError
from repro.report.curve import curve_markdown, curve_plot, read_curve, stand_in
from repro.stages.table3_curve import carve, errors_by_count
from repro.utils.io import write_json


def _digits(n: int, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
                    torch.randint(0, 10, (n,), generator=g), "toy", "train", "toy", real=False)


def test_carve_is_seeded_and_disjoint():
    data = _digits(50)
    train, valid = carve(data, 10, seed=3)
    again, _ = carve(data, 10, seed=3)
    assert len(train) == 40 and len(valid) == 10 and torch.equal(train.images, again.images)
    rows = {tuple(x.flatten().tolist()) for x in train.images}
    assert not rows & {tuple(x.flatten().tolist()) for x in valid.images}
    with pytest.raises(ReproError, match="n_valid 50 leaves no training digits"):
        carve(data, 50, seed=0)


def test_errors_by_count_is_the_error_of_each_prefix():
    g = torch.Generator().manual_seed(1)
    refs, labels = torch.rand(60, 784, generator=g), torch.randint(0, 3, (60,), generator=g)
    queries, q_labels = torch.rand(25, 784, generator=g), torch.randint(0, 3, (25,), generator=g)
    stream = [(refs[a:b], labels[a:b]) for a, b in ((0, 20), (20, 45), (45, 60))]
    got = errors_by_count(stream, [20, 45, 60], queries, q_labels, torch.device("cpu"))
    for n in (20, 45, 60):
        nearest = torch.cdist(queries.double(), refs[:n].double()).argmin(1)
        want = 100.0 * (labels[:n][nearest] != q_labels).float().mean().item()
        assert got[str(n)] == pytest.approx(want, abs=1e-3)


def _record() -> dict:
    err = {"1000": 30.0, "5000": 20.0, "8000": 18.0}
    return {"dataset": "mnist_5k", "source": "toy digits", "n_train": 4000, "n_valid": 1000,
            "seed": 0, "n_samples": [1000, 5000, 8000], "profile": "demo", "config": {},
            "real": {"1000": 12.0, "4000": 8.0}, "deviations": ["a carve"],
            "models": {"mnist_cond": {"epochs": {
                "1": {"step": 62, "train_seconds": 20.0, "err": err},
                "2": {"step": 124, "train_seconds": 40.0,
                      "err": {k: v / 2 for k, v in err.items()}}}}}}


def test_report_section_reads_the_stand_in_against_real_data(tmp_path):
    curve = _record()
    assert stand_in(curve) == "5000"  # as many samples as the carved split had digits
    md = curve_markdown(curve, "report_files/table3_curve.png")
    assert "| mnist_cond | 2 | 124 | 40.0 | 10.00% | 1.25 | 9.00% |" in md
    assert "1.5x that: 12.00%" in md and "![Table 3 learning curve]" in md
    curve_plot(curve, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_read_curve_absent_or_malformed(tmp_path):
    assert read_curve(tmp_path / "none.json") is None
    write_json(tmp_path / "bad.json", {"real": {}})
    with pytest.raises(ReproError, match="not a table3_curve record"):
        read_curve(tmp_path / "bad.json")
