"""Fitting datasets to models (repro.data.fit): geometry, the deviations it names, and that the
stages put those deviations on every cell they affect."""

from __future__ import annotations

import pytest
import torch

from repro.config import Params, validate
from repro.data.fit import fit_to, pad_geometry
from repro.errors import ReproError
from repro.protocols import probing
from repro.protocols.probing import RAW, SvmConfig
from repro.protocols.runner import run_table
from repro.tables import table2
from repro.context import Stage

from conftest import tiny_images

CPU = torch.device("cpu")


def test_pad_gives_the_documented_geometry_and_names_it():
    data = tiny_images(4, 1, 28)
    data.masks["window"] = torch.ones(4, 28, 28, dtype=torch.bool)
    out, devs = fit_to(data, 32, 3, "pad", key="table2.fit")
    assert out.images.shape == (4, 3, 32, 32)
    assert torch.equal(out.images[:, :, 2:30, 2:30], data.images.expand(-1, 3, -1, -1))
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (out.images[:, :, border] == 0).all()
    assert out.masks["window"][:, 2:30, 2:30].all() and not out.masks["window"][:, border].any()
    assert devs == ["tiny: 1 channel replicated to 3 (grey shown as RGB)",
                    "tiny images zero-padded 28x28 -> 32x32 (centred, 2 px each side of black; "
                    "table2.fit: pad)"]
    assert out.source.endswith(", zero-padded to 3x32x32") and torch.equal(out.labels, data.labels)
    assert pad_geometry(27, 27, 32) == (2, 3, 2, 3)  # odd: the extra pixel right / bottom


def test_resize_matches_imageset_resized_and_a_no_op_fit_adds_nothing():
    data = tiny_images(4, 3, 28)
    out, devs = fit_to(data, 32, 1, "resize", key="table3.fit")
    old = data.resized(32, 1)
    assert torch.equal(out.images, old.images) and out.source == old.source
    assert out.source.endswith(", resized to 1x32x32")
    assert devs == ["tiny: 3 channels converted to 1 (luma 0.299R + 0.587G + 0.114B)",
                    "tiny images resized 28x28 -> 32x32 (bilinear, antialiased; table3.fit: resize)"]
    same, none = fit_to(data, 28, 3, "pad")
    assert same is data and none == []


def test_impossible_fit_says_what_to_set():
    with pytest.raises(ReproError, match=r"cannot fit tiny's 64x64 images to 28x28 by padding.*"
                                         r"set table3\.fit: resize"):
        fit_to(tiny_images(2, 1, 64), 28, 1, "pad", key="table3.fit")
    with pytest.raises(ReproError, match="cannot convert 2 channels to 3"):
        fit_to(tiny_images(2, 2, 32), 32, 3, "resize")
    with pytest.raises(ReproError, match="invalid config: t2.fit"):
        validate(table2.Table2Config, {"fit": "crop"}, "t2")


def test_table2_names_the_fit_on_every_cell_and_in_provenance(tmp_path, monkeypatch):
    def tiny_split(name, split, **kw):  # MNIST-shaped digits, 3 classes
        return tiny_images(90 if split == "train" else 30, 1, 28, n_classes=3,
                           seed={"train": 0, "test": 1}[split])

    monkeypatch.setattr(probing, "load_dataset", tiny_split)
    cfg = table2.Table2Config(dataset="tiny", valid_split=None, n_valid=30, per_class=4,
                              select_draws=1, test_draws=2, models={"raw_pixels": RAW},
                              svm=SvmConfig(C_grid=[1e-2]), fit="pad",
                              supervised=table2.SupervisedConfig(trials=1, epochs=[1], batch_size=[8]))
    stage = Stage("table2", "table2", cfg, Params(profile="demo", device="cpu"), CPU)
    run_table(table2.UNIT, stage, tmp_path / "ckpts", tmp_path / "t2.json", tmp_path / "prov")
    from repro.utils.io import read_cells, read_json

    cells = read_cells(tmp_path / "t2.json")
    assert set(cells) == {"table2/raw_pixels/err@1000", "table2/knn/err@1000",
                          "table2/supervised_cnn/val_err@1000", "table2/supervised_cnn/err@1000"}
    pad = "tiny images zero-padded 28x28 -> 32x32 (centred, 2 px each side of black; table2.fit: pad)"
    for cell in cells.values():
        assert pad in cell["deviations"]
        assert "tiny: 1 channel replicated to 3 (grey shown as RGB)" in cell["deviations"]
    assert pad in read_json(tmp_path / "prov" / "table2.json")["deviations"]
    assert not (tmp_path / "t2.partial.json").exists()


def test_train_stage_fits_the_data_and_records_it_in_checkpoint_and_provenance(tmp_path,
                                                                              monkeypatch):
    import yaml

    from repro.stages import train
    from repro.utils.io import read_json

    (tmp_path / "experiments").mkdir()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"profile": "t", "device": "cpu"}))
    (tmp_path / "experiments" / "t.yaml").write_text(yaml.safe_dump({"train": {"tiny32": {
        "variant": "svhn32", "dataset": "tiny", "epochs": 1, "batch_size": 16, "max_steps": 1,
        "grid_size": 4, "fit": "pad", "deviations": ["a tiny run"]}}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "load_dataset", lambda *a, **kw: tiny_images(32, 1, 28))
    train.run("tiny32", tmp_path / "out", None, tmp_path / "prov", resume=False)
    ckpt = torch.load(tmp_path / "out" / "seed0.pt", weights_only=False)
    pad = ("tiny images zero-padded 28x28 -> 32x32 (centred, 2 px each side of black; "
           "train.tiny32.fit: pad)")
    assert ckpt["deviations"][0] == "a tiny run" and pad in ckpt["deviations"]
    assert ckpt["data_source"].endswith(", zero-padded to 3x32x32")
    assert pad in read_json(tmp_path / "prov" / "train_tiny32.json")["deviations"]
