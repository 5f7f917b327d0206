"""Fault injection: every consumer verifies what it consumes (issue #11).

Each case plants one bad input (a checkpoint of the wrong variant, a truncated or tampered
checkpoint, a pickle that runs code, a NaN cell, a quoted number, a temp file left by a killed
writer) and checks that the user gets one clear ReproError line, or that the fault is cleaned
up, and that nothing half-done is left behind. Tiny generated data only.

Sections (add new cases under a header of their own):
  1. checkpoints (variant, weights_only, truncation)
  2. user-supplied pickles
  3. metric values (NaN / inf)
  4. config numbers
  5. temp files of atomic writes
  6. finished rows of long table stages (kill, resume)
"""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml

from repro.config import validate
from repro.errors import ReproError, cli_errors
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer

from conftest import REPO, tiny_images

CPU = torch.device("cpu")


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def gan_mlp_ckpt(tmp_path_factory):
    """A real harness checkpoint (one step of gan_mlp on noise digits)."""
    path = tmp_path_factory.mktemp("ck") / "seed0.pt"
    cfg = TrainConfig(variant="gan_mlp", dataset="tiny", epochs=1, batch_size=16, max_steps=1)
    GANTrainer(cfg, tiny_images(32, 1, 28), CPU, path,
               extra={"profile": "smoke", "dry_run": True, "deviations": ["test"]}).run(seed=0)
    return path


class _RunsShell:
    """Unpickling this calls os.system: the marker file appears if the payload ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ----------------------------------------------------------------------- 1. checkpoints

def test_wrong_variant_refused_by_table3_loader(gan_mlp_ckpt, tmp_path):
    """A gan_mlp checkpoint in the mnist_cond folder is not scored as the DCGAN row."""
    from repro.protocols.generated import load_generator
    from repro.tables.table3 import Table3Config

    planted = tmp_path / "mnist_cond" / "seed0.pt"
    planted.parent.mkdir()
    shutil.copy(gan_mlp_ckpt, planted)
    expect = Table3Config().variants["dcgan"]
    assert expect == "mnist_cond"
    with pytest.raises(ReproError) as err:
        load_generator(planted, expect, CPU)
    msg = _one_line(err)
    assert str(planted) in msg and "'gan_mlp'" in msg and "expected 'mnist_cond'" in msg
    # the right checkpoint for the gan row loads
    variant, _, ckpt = load_generator(gan_mlp_ckpt, Table3Config().variants["gan"], CPU)
    assert variant.spec.name == "gan_mlp" and ckpt["seed"] == 0


def test_wrong_variant_refused_by_probing_features(gan_mlp_ckpt, tmp_path):
    """Table 1/2 rows name the variant their checkpoints must hold."""
    from repro.protocols.probing import FeatureConfig, features, sources
    from repro.tables.table1 import Table1Config

    folder = tmp_path / "imagenet32"
    folder.mkdir()
    shutil.copy(gan_mlp_ckpt, folder / "seed0.pt")
    cfg = Table1Config()
    (src,) = sources(tmp_path, {"dcgan_l2svm": "imagenet32"}, cfg.variants, "table1")
    with pytest.raises(ReproError, match=r"holds variant 'gan_mlp', expected 'imagenet32'"):
        features(src, {}, FeatureConfig(), CPU, 32, tmp_path)
    with pytest.raises(ReproError, match=r"table1\.variants has no entry for row 'extra'"):
        sources(tmp_path, {"extra": "imagenet32"}, cfg.variants, "table1")


def test_harness_checkpoint_loads_weights_only(gan_mlp_ckpt):
    from repro.models.checkpoint import load_checkpoint

    raw = torch.load(gan_mlp_ckpt, weights_only=True)  # no error: tensors and plain values
    assert raw["variant"] == "gan_mlp" and raw["deviations"] == ["test"]
    assert isinstance(raw["cpu_rng"], torch.Tensor) and isinstance(raw["noise_rng"], torch.Tensor)
    assert load_checkpoint(gan_mlp_ckpt, "gan_mlp")["step"] == 1


def test_checkpoint_with_foreign_objects_is_refused_unrun(gan_mlp_ckpt, tmp_path):
    from repro.models.checkpoint import load_checkpoint

    marker = tmp_path / "ran"
    ckpt = torch.load(gan_mlp_ckpt, weights_only=True)
    ckpt["extra"] = _RunsShell(marker)
    bad = tmp_path / "seed0.pt"
    torch.save(ckpt, bad)
    with pytest.raises(ReproError) as err:
        load_checkpoint(bad)
    msg = _one_line(err)
    assert "holds objects other than tensors and plain values" in msg and "system" in msg
    assert not marker.exists()


def test_truncated_checkpoint_on_resume_is_one_line(gan_mlp_ckpt, tmp_path, capsys):
    path = tmp_path / "seed0.pt"
    path.write_bytes(gan_mlp_ckpt.read_bytes()[:2000])  # a kill mid-copy, a full disk
    cfg = TrainConfig(variant="gan_mlp", dataset="tiny", epochs=1, batch_size=16, max_steps=1)
    trainer = GANTrainer(cfg, tiny_images(32, 1, 28), CPU, path)

    @cli_errors
    def main():
        trainer.run(seed=0, resume=True)

    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: checkpoint {path} is unreadable (") and "retrain" in err


# ----------------------------------------------------------------------- 2. user-supplied pickles

def _imagenet32_batch(n: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(1, 1001, n)],
            "mean": rng.random(3072).astype(np.float32)}


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_imagenet32_pickle_of_arrays_is_read(tmp_path, protocol):
    from repro.data.folders import read_imagenet32_batches

    batch = _imagenet32_batch()
    path = tmp_path / "train_data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    x, y, total = read_imagenet32_batches([path], None, 0)
    assert total == 4 and x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.equal(x.flatten(1), torch.from_numpy(batch["data"]))
    assert y.tolist() == [v - 1 for v in batch["labels"]]


def test_numpy1_module_names_are_admitted(tmp_path):
    """Pickles written under numpy 1 name numpy.core, numpy 2 ones numpy._core."""
    from repro.utils.safe_pickle import load_arrays

    blob = pickle.dumps({"data": np.arange(6, dtype=np.uint8)}, protocol=2)
    for core in (b"numpy._core", b"numpy.core"):
        other = blob.replace(b"numpy._core", core).replace(b"numpy.core", core)
        path = tmp_path / "b.pkl"
        path.write_bytes(other)
        assert load_arrays(path)["data"].tolist() == list(range(6))


def test_imagenet32_pickle_that_runs_code_is_refused(tmp_path):
    from repro.data.folders import read_imagenet32_batches

    marker = tmp_path / "ran"
    batch = _imagenet32_batch()
    batch["labels"] = _RunsShell(marker)
    path = tmp_path / "train_data_batch_1"
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(ReproError) as err:
        read_imagenet32_batches([path], None, 0)
    msg = _one_line(err)
    assert str(path) in msg and "holds objects other than numpy arrays" in msg
    assert "will not be loaded" in msg and "system" in msg
    assert not marker.exists()


# ----------------------------------------------------------------------- 3. metric values

def _cell(runs):
    from repro.context import metric_cell

    return metric_cell(runs, seeds=list(range(len(runs))), comparable=False,
                       protocol={"profile": "smoke"}, deviations=[], compares_to=None)


def test_nan_cell_is_refused_by_the_writer(tmp_path):
    from repro.utils.io import read_cells, write_metrics

    path = tmp_path / "table3.json"
    metrics = {"table3/dcgan/err@50k": _cell([1.0, float("nan")]),
               "table3/real/err@50k": _cell([2.0])}
    with pytest.raises(ReproError) as err:
        write_metrics(path, metrics)
    msg = _one_line(err)
    assert "'table3/dcgan/err@50k'" in msg and "nan" in msg and "real" not in msg
    assert not path.exists() and not list(tmp_path.iterdir())
    metrics["table3/dcgan/err@50k"] = {**_cell([1.0]), "value": None, "runs": []}  # not run
    write_metrics(path, metrics)
    assert read_cells(path)["table3/dcgan/err@50k"]["value"] is None


def test_nan_or_inf_in_a_metrics_file_is_refused_by_the_report(tmp_path):
    from repro.report.inputs import read_metrics_dir

    good = _cell([1.0, 2.0])
    for literal in (float("nan"), float("inf")):
        (tmp_path / "table1.json").write_text(json.dumps({   # Python's json writes NaN / Infinity
            "table1/raw/acc": good, "table1/dcgan/acc": {**good, "runs": [1.0, literal]}}))
        with pytest.raises(ReproError) as err:
            read_metrics_dir(tmp_path)
        msg = _one_line(err)
        assert "table1.json" in msg and "'table1/dcgan/acc'" in msg and "runs[1]" in msg
    (tmp_path / "table1.json").write_text(json.dumps({"table1/raw/acc": {**good, "value": None}}))
    assert read_metrics_dir(tmp_path)["table1"]["table1/raw/acc"].value is None


# ----------------------------------------------------------------------- 4. config numbers

@pytest.mark.parametrize("line, key, got", [
    ('lr: "0.0002"', "lr", "'0.0002', a str"),
    ("epochs: true", "epochs", "True, a bool"),
    ('batch_size: "64"', "batch_size", "'64', a str"),
])
def test_quoted_or_bool_numbers_name_the_key(line, key, got):
    data = yaml.safe_load(f"variant: gan_mlp\ndataset: mnist\nepochs: 1\n{line}\n")
    with pytest.raises(ReproError) as err:
        validate(TrainConfig, data, "smoke.train.gan_mlp")
    msg = _one_line(err)
    assert f"smoke.train.gan_mlp.{key}:" in msg and got in msg


def test_yaml_lists_still_fill_tuple_and_list_fields():
    from repro.tables.table2 import SupervisedConfig

    cfg = validate(SupervisedConfig, yaml.safe_load("lr: [0.0001, 1]\nepochs: [1, 2]"), "t2")
    assert cfg.lr == (0.0001, 1.0) and cfg.epochs == [1, 2]
    with pytest.raises(ReproError, match=r"t2\.lr\.0: .*'1e-4', a str"):
        validate(SupervisedConfig, {"lr": ["1e-4", 1]}, "t2")
    assert validate(TrainConfig, {"variant": "a", "dataset": "b", "epochs": 1, "lr": 1},
                    "t").lr == 1.0  # an int is a valid float


# ----------------------------------------------------------------------- 5. temp files of atomic writes

def test_stale_temp_file_is_removed_on_the_next_write(tmp_path):
    from repro.utils.io import atomic_path, torch_save, write_json

    target = tmp_path / "seed0.pt"
    stale = tmp_path / ".seed0.pt.k9x_2abq.tmp"  # what a kill -9 mid-write leaves
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".seed0.pt.json.k9x_2abq.tmp"  # another target's temp: not ours
    other.write_bytes(b"x")
    torch_save({"w": torch.ones(2)}, target)
    assert not stale.exists() and other.exists()
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    # a temp file whose writer is still running (it holds the lock) is kept
    with atomic_path(tmp_path / "m.json") as live:
        live.write_text("{}")
        write_json(tmp_path / "m.json", {"a": 1})
        assert live.exists()
    assert json.loads((tmp_path / "m.json").read_text()) == {}  # the later rename wins
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".seed0.pt.json.k9x_2abq.tmp", "m.json", "seed0.pt"])


def test_dvc_ignores_temp_files():
    import fnmatch

    patterns = [ln.strip() for ln in (REPO / ".dvcignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert any(fnmatch.fnmatch(".seed0.pt.k9x_2abq.tmp", p) for p in patterns)
    assert not any(fnmatch.fnmatch("seed0.pt", p) for p in patterns)


# ----------------------------------------------------------------------- 6. finished rows of table stages
# A long table stage killed mid-run keeps the rows it finished (repro.protocols.rows): the rerun
# reuses them and writes the same bytes as a straight run; another config discards them.

from pathlib import Path  # noqa: E402

from repro.config import Params  # noqa: E402
from repro.protocols import generated, linear, probing, runner  # noqa: E402
from repro.protocols.probing import RAW, SvmConfig  # noqa: E402
from repro.protocols.rows import partial_path  # noqa: E402
from repro.context import Stage  # noqa: E402
from repro.tables import table1, table2, table3  # noqa: E402


class Killed(Exception):
    """Stands in for a kill in the middle of a row."""


def _stage(name: str, cfg) -> Stage:
    return Stage(name, name, cfg, Params(profile="demo", device="cpu"), CPU)


# The row functions as imported, before any test patched them.
REAL = {(m.__name__, n): getattr(m, n) for m, n in (
    (linear, "_probe"), (table2, "_knn_cell"),
    (table2, "_supervised_cells"), (generated, "_score"))}


def _patch(monkeypatch, module, name: str, kill_at: int = 0) -> dict:
    """Count the calls of module.name; raise Killed on call number `kill_at` (0: never)."""
    real, calls = REAL[module.__name__, name], {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.fixture
def digits(monkeypatch):
    """MNIST-shaped labelled digits (3 classes) for the probe stages."""
    def load(name, split, **kw):
        return tiny_images(90 if split == "train" else 30, 1, 28, n_classes=3,
                           seed={"train": 0, "test": 1}[split])

    monkeypatch.setattr(probing, "load_dataset", load)


def _t2cfg(**kw) -> table2.Table2Config:
    base = dict(dataset="tiny", valid_split=None, n_valid=30, per_class=4, select_draws=1,
                test_draws=2, models={"raw_pixels": RAW, "raw_again": RAW},
                svm=SvmConfig(C_grid=[1e-3, 1e-2]),
                supervised=table2.SupervisedConfig(trials=1, epochs=[1], batch_size=[8]))
    return table2.Table2Config(**{**base, **kw})


def _table2(tmp: Path, cfg=None) -> Path:
    out = tmp / "metrics" / "table2.json"
    runner.run_table(table2.UNIT, _stage("table2", cfg or _t2cfg()), tmp / "ckpts", out,
                          tmp / "prov")
    return out


def test_table2_killed_after_a_row_resumes_and_writes_the_same_bytes(tmp_path, digits, monkeypatch,
                                                                     capsys):
    straight = _table2(tmp_path / "straight").read_bytes()
    run = tmp_path / "killed"
    out = run / "metrics" / "table2.json"
    _patch(monkeypatch, linear, "_probe", kill_at=2)
    with pytest.raises(Killed):
        _table2(run)
    assert not out.exists()  # no half-written metrics file
    assert partial_path(out) == run / "metrics" / "table2.partial.json"
    assert partial_path(out).is_file()
    calls = _patch(monkeypatch, linear, "_probe")
    capsys.readouterr()
    _table2(run)
    printed = capsys.readouterr().out
    assert "table2: resuming from" in printed and "1 finished row(s)" in printed
    assert "raw_pixels/raw_pixels" in printed
    assert calls["n"] == 1  # only the row in progress at the kill was run again
    assert out.read_bytes() == straight
    assert not partial_path(out).exists()


def test_table2_a_kill_in_the_last_row_keeps_all_earlier_rows(tmp_path, digits, monkeypatch):
    run = tmp_path / "run"
    _patch(monkeypatch, table2, "_supervised_cells", kill_at=1)
    with pytest.raises(Killed):
        _table2(run)
    svm, knn = _patch(monkeypatch, linear, "_probe"), _patch(monkeypatch, table2, "_knn_cell")
    sup = _patch(monkeypatch, table2, "_supervised_cells")
    _table2(run)
    assert (svm["n"], knn["n"], sup["n"]) == (0, 0, 1)
    assert "table2/supervised_cnn/err@1000" in (run / "metrics" / "table2.json").read_text()


def test_readers_of_a_metrics_folder_skip_an_interrupted_stage_s_rows(tmp_path, digits,
                                                                      monkeypatch):
    from repro.report.inputs import read_metrics_dir

    run = tmp_path / "run"
    _patch(monkeypatch, table2, "_supervised_cells", kill_at=1)
    with pytest.raises(Killed):
        _table2(run)
    assert [p.name for p in (run / "metrics").iterdir()] == ["table2.partial.json"]
    assert read_metrics_dir(run / "metrics") == {}  # the report and the drift gate see none


def test_table2_another_config_discards_the_finished_rows(tmp_path, digits, monkeypatch, capsys):
    run = tmp_path / "run"
    _patch(monkeypatch, linear, "_probe", kill_at=2)
    with pytest.raises(Killed):
        _table2(run)
    calls = _patch(monkeypatch, linear, "_probe")
    capsys.readouterr()
    _table2(run, _t2cfg(test_draws=3))
    assert "table2: discarding" in capsys.readouterr().out
    assert calls["n"] == 2  # every row run afresh
    assert not partial_path(run / "metrics" / "table2.json").exists()


def _table1(tmp: Path) -> Path:
    cfg = table1.Table1Config(dataset="tiny", n_valid=20, per_class=4, draws=2, select_draws=1,
                              models={"raw_pixels": RAW, "raw_again": RAW},
                              svm=SvmConfig(C_grid=[1e-3, 1e-2]))
    out = tmp / "table1.json"
    runner.run_table(table1.UNIT, _stage("table1", cfg), tmp / "ckpts", out, tmp / "prov")
    return out


def test_table1_killed_after_a_row_resumes_and_writes_the_same_bytes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(probing, "load_dataset", lambda name, split, **kw: tiny_images(
        90 if split == "train" else 30, 3, 32, n_classes=3, seed={"train": 0, "test": 1}[split]))
    straight = _table1(tmp_path / "straight").read_bytes()
    _patch(monkeypatch, linear, "_probe", kill_at=2)
    with pytest.raises(Killed):
        _table1(tmp_path / "run")
    assert not (tmp_path / "run" / "table1.json").exists()
    calls = _patch(monkeypatch, linear, "_probe")
    capsys.readouterr()
    out = _table1(tmp_path / "run")
    assert "table1: resuming from" in capsys.readouterr().out
    assert calls["n"] == 1 and out.read_bytes() == straight
    assert not partial_path(out).exists()


def _generators(folder: Path, names: list[str]) -> None:
    """Tiny conditional 28x28 generators (one training step each)."""
    cfg = TrainConfig(variant="gan_mlp", dataset="tiny", epochs=1, batch_size=16, max_steps=1)
    for i, name in enumerate(names):
        GANTrainer(cfg, tiny_images(32, 1, 28, seed=i), CPU, folder / name / "seed0.pt").run(seed=i)


def _table3(tmp: Path, ckpts: Path) -> Path:
    cfg = table3.Table3Config(dataset="tiny", models={"dcgan": "g1", "gan": "g2"},
                              variants={"dcgan": "gan_mlp", "gan": "gan_mlp"},
                              n_samples={"50k": 200, "10m": 400}, chunk_size=100,
                              generate_batch=100, grid_per_class=1)
    out = tmp / "table3.json"
    runner.run_table(table3.UNIT, _stage("table3", cfg), ckpts, out, tmp / "prov",
                     outputs={"figure": tmp / "fig9.png"})
    return out


def test_table3_killed_after_a_row_resumes_redraws_fig9_and_writes_the_same_bytes(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(table3, "load_dataset", lambda name, split, max_images, seed, **kw:
                        tiny_images(40, 1, 28, seed={"train": 2, "test": 3}[split]))
    ckpts = tmp_path / "ckpts"
    _generators(ckpts, ["g1", "g2"])
    straight = _table3(tmp_path / "straight", ckpts).read_bytes()
    _patch(monkeypatch, generated, "_score", kill_at=2)  # in the gan row, after dcgan
    with pytest.raises(Killed):
        _table3(tmp_path / "run", ckpts)
    (tmp_path / "run" / "fig9.png").unlink(missing_ok=True)  # dvc repro deletes declared outputs
    _patch(monkeypatch, generated, "_score")
    capsys.readouterr()
    out = _table3(tmp_path / "run", ckpts)
    assert ("1 finished row(s) with the same config and inputs (dcgan/seed0.pt)"
            in capsys.readouterr().out)
    assert out.read_bytes() == straight and (tmp_path / "run" / "fig9.png").is_file()
    assert not partial_path(out).exists()
