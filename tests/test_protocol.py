"""The protocol as data (repro.published.protocol): defaults, derived comparability, not-run rows.

Comparability is derived from the protocol's fields, never from the profile's name: a copy of
the paper profile under another name gives the same verdicts, and changing one protocol field
names exactly that field on the cells it affects.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from repro.errors import ReproError
from repro.protocols import probing
from repro.protocols.runner import run_table
from repro.published.protocol import CHECKPOINT, KMEANS, KNN, RAW, REAL, SUPERVISED
from repro.context import Stage
from repro.tables import get_protocol, load_published, protocols, table1, table2, table3
from repro.utils.io import read_cells

from conftest import REPO, tiny_images

CPU = torch.device("cpu")


def _profile(tmp: Path, name: str, edit: dict | None = None) -> Path:
    """A copy of experiments/paper.yaml named `name` (with `edit` merged into its sections)."""
    (tmp / "experiments").mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((REPO / "experiments" / "paper.yaml").read_text())
    for section, fields in (edit or {}).items():
        data[section] = {**(data.get(section) or {}), **fields}
    (tmp / "experiments" / f"{name}.yaml").write_text(yaml.safe_dump(data))
    (tmp / "params.yaml").write_text(yaml.safe_dump({"profile": name, "device": "cpu"}))
    return tmp / "params.yaml"


def _diffs(params: Path) -> dict[str, list]:
    """cell (table/row kind/column) -> protocol diff, for a run on real data of the paper's
    sizes (the sizes a real run of the profile would load)."""
    def run_values(unit, **facts):  # the run's protocol, read from the section as a stage does
        stage = Stage.open(unit.name, unit.config, unit.name, params)
        return stage.section, unit.protocol.run_values(stage.section, {
            "real_data": True, "dry_run": stage.dry_run, "preprocessing": [],
            "n_valid": getattr(stage.section, "n_valid", None), **facts})

    out = {}
    t1 = table1.PROTOCOL
    _, e1 = run_values(table1.UNIT, n_train=50_000, n_test=10_000)
    ckpt = {"checkpoint_dry_run": False, "pretraining_data": "imagenet32", "variant": "imagenet32"}
    for kind in (CHECKPOINT, KMEANS, RAW):
        for col in t1.columns:
            out[f"table1/{kind}/{col}"] = t1.diff(kind, col, {**e1, **ckpt})
    _, e2 = run_values(table2.UNIT, n_valid=10_000)  # the paper's split, whatever the section
    for kind in (CHECKPOINT, RAW, KNN, SUPERVISED):
        out[f"table2/{kind}/err@1000"] = table2.PROTOCOL.diff(
            kind, "err@1000", {**e2, "checkpoint_dry_run": False})
    s3, e3 = run_values(table3.UNIT, n_train=50_000, n_test=10_000)
    for col, n in s3.n_samples.items():
        out[f"table3/{CHECKPOINT}/{col}"] = table3.PROTOCOL.diff(
            CHECKPOINT, f"err@{col}", {**e3, "n_samples": n, "checkpoint_dry_run": False})
    out[f"table3/{REAL}/50k"] = table3.PROTOCOL.diff(REAL, "err@50k", {**e3, "n_samples": 50_000})
    return out


def test_paper_profile_follows_the_protocol_and_a_copy_under_another_name_too(tmp_path):
    paper = _diffs(_profile(tmp_path / "a", "paper"))
    assert all(d == [] for d in paper.values()), {k: d for k, d in paper.items() if d}
    assert _diffs(_profile(tmp_path / "b", "my_copy")) == paper


@pytest.mark.parametrize("edit, changed, field", [
    ({"table1": {"per_class": 100}}, {"table1/checkpoint/acc@400pc", "table1/kmeans/acc@400pc",
                                       "table1/raw_pixels/acc@400pc"}, "per_class"),
    ({"table1": {"kmeans": {"n_centroids": 1600}}}, {"table1/kmeans/acc", "table1/kmeans/acc@400pc",
                                                     "table1/kmeans/max_features"}, "kmeans_centroids"),
    ({"table2": {"svm": {"C_grid": [0.001, 0.01]}}}, {"table2/checkpoint/err@1000",
                                                      "table2/raw_pixels/err@1000"}, "C_grid"),
    ({"table2": {"supervised": {"trials": 4}}}, {"table2/supervised/err@1000"}, "trials"),
    ({"table2": {"evaluator": "nn1"}}, {"table2/checkpoint/err@1000", "table2/raw_pixels/err@1000"},
     "evaluator"),
    ({"table3": {"n_samples": {"50k": 20000, "10m": 10000000}}}, {"table3/checkpoint/50k"},
     "n_samples"),
])
def test_one_changed_field_is_named_on_exactly_the_cells_it_affects(tmp_path, edit, changed, field):
    diffs = _diffs(_profile(tmp_path, "paper_but", edit))
    assert {k for k, d in diffs.items() if d} == changed
    for k in changed:
        assert [d["field"] for d in diffs[k]] == [field]
        assert diffs[k][0]["run"] != diffs[k][0]["paper"]


def test_no_stage_decides_comparability_by_the_profile_name():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "repro").rglob("*.py")
                 if "profile ==" in p.read_text() or "profile !=" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(protocols()))
def test_protocol_rows_and_columns_are_the_papers(name):
    proto = get_protocol(name)
    cells = load_published()
    for row in proto.rows.values():
        if row.published:
            assert any(c.startswith(f"{name}/{row.published}/") for c in cells), row
    for col in proto.columns:
        assert any(c.endswith(f"/{col}") for c in cells if c.startswith(f"{name}/"))
    with pytest.raises(ReproError, match="valid names"):
        get_protocol("table9")


def test_section_defaults_are_the_protocol():
    t1, t2, t3 = table1.Table1Config(), table2.Table2Config(), table3.Table3Config()
    assert (t1.dataset, t1.per_class, t1.draws) == ("cifar10", 400, 10)
    assert t1.kmeans.n_centroids == 4800 and t1.models["dcgan_l2svm"] == "imagenet32"
    assert t2.svm.C_grid == list(table2.PROTOCOL.paper("C_grid")) and t2.supervised.trials == 64
    assert t3.n_samples == {"50k": 50_000, "10m": 10_000_000} and t3.models["dcgan"] == "mnist_cond"


def _stage(name, cfg):
    from repro.config import Params
    return Stage(name, name, cfg, Params(profile="demo", device="cpu"), CPU)


def test_a_missing_checkpoint_is_not_run_with_its_reason_in_table1(tmp_path, monkeypatch):
    monkeypatch.setattr(probing, "load_dataset", lambda name, split, **kw: tiny_images(
        90 if split == "train" else 30, 3, 32, n_classes=3, seed={"train": 0, "test": 1}[split]))
    (tmp_path / "ckpts" / "imagenet32").mkdir(parents=True)
    (tmp_path / "ckpts" / "imagenet32" / "MISSING.json").write_text(
        json.dumps({"reason": "the pretrained files are absent"}))
    cfg = table1.Table1Config(dataset="tiny", n_valid=20, per_class=4, draws=2, select_draws=1,
                              models={"dcgan_l2svm": "imagenet32", "raw_pixels": RAW},
                              svm=probing.SvmConfig(C_grid=[1e-3, 1e-2]))
    out = tmp_path / "t1.json"
    run_table(table1.UNIT, _stage("table1", cfg), tmp_path / "ckpts", out, tmp_path / "prov")
    cells = read_cells(out)
    for col in ("acc", "acc@400pc", "max_features"):
        c = cells[f"table1/dcgan_l2svm/{col}"]
        assert c["value"] is None and c["missing"] == "the pretrained files are absent"
        assert c["comparable"] is False and c["compares_to"] == f"table1/dcgan_l2svm/{col}"
    raw = cells["table1/raw_pixels/acc"]
    assert raw["value"] is not None and raw["compares_to"] is None and not raw["comparable"]
    assert {"field": "dataset", "paper": "cifar10", "run": "tiny"} in raw["protocol_diff"]
    assert any(d.startswith("protocol: dataset = 'tiny'") for d in raw["deviations"])


def test_a_checkpoint_row_without_a_file_is_never_probed_as_raw_pixels(tmp_path):
    images = {"train": tiny_images(8, 3, 32).images}
    for src in (probing.Source("dcgan_l2svm", "imagenet32", None),
                probing.Source("dcgan_l2svm", "imagenet32", None, missing="absent")):
        with pytest.raises(ReproError, match="dcgan_l2svm"):
            probing.features(src, images, probing.FeatureConfig(), CPU, 32, tmp_path)
    raw = probing.features(probing.Source("raw_pixels", RAW, None), images,
                           probing.FeatureConfig(), CPU, 32, tmp_path)
    assert raw.feature_dim == 3 * 32 * 32


def test_table3_missing_generator_is_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(table3, "load_dataset", lambda name, split, max_images, seed, **kw:
                        tiny_images(40, 1, 28, seed={"train": 2, "test": 3}[split]))
    for name in ("g1", "g2"):
        (tmp_path / "ckpts" / name).mkdir(parents=True)
        (tmp_path / "ckpts" / name / "MISSING.json").write_text(json.dumps({"reason": "no run"}))
    cfg = table3.Table3Config(dataset="tiny", models={"dcgan": "g1", "gan": "g2"},
                              n_samples={"50k": 200, "10m": 400}, chunk_size=100)
    out = tmp_path / "t3.json"
    run_table(table3.UNIT, _stage("table3", cfg), tmp_path / "ckpts", out, tmp_path / "prov",
              outputs={"figure": tmp_path / "fig9.png"})
    cells = read_cells(out)
    assert cells["table3/dcgan/err@50k"]["missing"] == "no run"
    assert cells["table3/real/err@50k"]["value"] is not None
    assert [d["field"] for d in cells["table3/real/err@50k"]["protocol_diff"]] == [
        "real_data", "dataset", "n_train", "n_test", "n_samples"]
    shutil.rmtree(tmp_path / "ckpts")


def test_a_declared_row_fed_from_another_folder_stays_compared_and_names_the_move():
    assert table1.PROTOCOL.row("dcgan_l2svm", "imagenet32_small").published == "dcgan_l2svm"
    assert table1.PROTOCOL.source_diff("dcgan_l2svm", "imagenet32_small", "imagenet32") == [
        {"field": "dcgan_l2svm.source", "paper": "imagenet32", "run": "imagenet32_small"}]
    assert table1.PROTOCOL.source_diff("dcgan_l2svm", "imagenet32", "imagenet32") == []
    assert table1.PROTOCOL.row("dcgan_l2svm", RAW).published is None  # another kind: a harness row
    assert table3.PROTOCOL.source_diff("gan", "gan_mlp", "mnist_cond")[0]["field"] == "gan.variant"
    assert table1.PROTOCOL.source_diff("extra_row", "x", None) == []
