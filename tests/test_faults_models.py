"""Fault audit (issue 32), model side: checkpoints carry a content hash checked on load, a
checkpoint in another section's folder is refused by its consumers, and the probe's and the
judges' weight files, factories and sizes fail with one clear line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from repro.errors import ReproError
from repro.models.checkpoint import (FOLDER_RECORD, SEAL, build_from_checkpoint, load_checkpoint,
                                     write_folder_record)
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer

from conftest import tiny_images
import probe_toy

CPU = torch.device("cpu")


def _train(path: Path, variant: str, dataset: str, channels: int, size: int) -> Path:
    cfg = TrainConfig(variant=variant, dataset=dataset, epochs=1, batch_size=8, max_steps=1)
    GANTrainer(cfg, tiny_images(16, channels, size), CPU, path).run(seed=0)
    return path


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("gan") / "seed0.pt", "gan_mlp", "mnist_5k", 1, 28)


def _flip_a_weight_byte(src: Path, dst: Path) -> None:
    """Flip one byte in the middle of the largest tensor record (stored uncompressed), where
    the file still unpickles: what a bad disk sector or a faulty copy does."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    start = info.header_offset + 30 + int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little") \
        + int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    data[start + info.file_size // 2] ^= 0x10
    dst.write_bytes(bytes(data))


def test_in_run_checkpoint_with_a_flipped_byte_is_refused(gan_ckpt, tmp_path):
    assert SEAL in torch.load(gan_ckpt, weights_only=True)  # the trainer seals what it writes
    bad = tmp_path / "seed0.pt"
    _flip_a_weight_byte(gan_ckpt, bad)
    raw = torch.load(bad, weights_only=True)  # torch alone does not notice
    assert raw["variant"] == "gan_mlp"
    with pytest.raises(ReproError, match=rf"checkpoint {bad} fails its content hash: it changed "
                                         "after it was written .*delete it and retrain"):
        build_from_checkpoint(bad, "gan_mlp")


def test_checkpoint_without_a_seal_still_loads(gan_ckpt, tmp_path):
    """Checkpoints written before the seal (the committed shipped ones) load as before."""
    raw = torch.load(gan_ckpt, weights_only=True)
    del raw[SEAL]
    old = tmp_path / "seed0.pt"
    torch.save(raw, old)
    assert load_checkpoint(old, "gan_mlp")["seed"] == 0


def test_edited_value_fails_the_seal(gan_ckpt, tmp_path):
    raw = torch.load(gan_ckpt, weights_only=True)
    raw["config"]["dataset"] = "imagenet32"  # an edit that keeps the file well-formed
    edited = tmp_path / "seed0.pt"
    torch.save(raw, edited)
    with pytest.raises(ReproError, match="fails its content hash"):
        load_checkpoint(edited)


def test_svhn32_checkpoint_in_the_imagenet32_folder_is_refused_by_table1(tmp_path):
    """The issue's case: variant svhn32 matches Table 1's demo row, the training data does not."""
    from repro.protocols.probing import FeatureConfig, Source, features

    folder = tmp_path / "imagenet32"
    stray = _train(folder / "seed0.pt", "svhn32", "mnist_5k", 3, 32)  # the svhn32 section's run
    write_folder_record(folder, "imagenet32", "svhn32",
                        {"dataset": "fashion_mnist", "split": "train", "max_images": 20000})
    src = Source("dcgan_l2svm", "imagenet32", stray, expect_variant="svhn32")
    with pytest.raises(ReproError, match=r"seed0.pt is not a checkpoint of train section "
                                         r"'imagenet32', whose folder it is in: dataset 'mnist_5k' "
                                         r"\(folder: 'fashion_mnist'\), max_images None \(folder: "
                                         r"20000\).*dvc repro train@imagenet32"):
        features(src, {}, FeatureConfig(), CPU, 32, tmp_path)


def test_every_consumer_checks_the_folder(gan_ckpt, tmp_path):
    from repro.protocols.generated import load_generator

    folder = tmp_path / "gan_mlp"
    folder.mkdir()
    (folder / "seed0.pt").write_bytes(gan_ckpt.read_bytes())
    write_folder_record(folder, "gan_mlp", "gan_mlp", {"dataset": "mnist", "split": "train"})
    with pytest.raises(ReproError, match="not a checkpoint of train section 'gan_mlp'"):
        load_generator(folder / "seed0.pt", "gan_mlp", CPU)  # Table 3
    with pytest.raises(ReproError, match="not a checkpoint of train section 'gan_mlp'"):
        build_from_checkpoint(folder / "seed0.pt")  # the figures, annotate
    write_folder_record(folder, "gan_mlp", "gan_mlp", {"dataset": "mnist_5k", "split": "train"})
    assert load_generator(folder / "seed0.pt", "gan_mlp", CPU)[2]["seed"] == 0
    (folder / FOLDER_RECORD).write_text("{")
    with pytest.raises(ReproError, match=f"{FOLDER_RECORD} is damaged"):
        load_checkpoint(folder / "seed0.pt")


# ---------------------------------------------------------------- probe and judges

class _RunsCode:
    """Unpickling this calls os.system: what a hostile 'weights' file does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_code_running_pickle_given_to_the_probe_is_refused_without_the_unsafe_hint(tmp_path):
    from repro.probe import build

    marker = tmp_path / "ran"
    evil = tmp_path / "netD.pt"
    torch.save({"main.0.weight": _RunsCode(marker)}, evil)
    with pytest.raises(ReproError) as err:
        build("probe_toy:make_netD", evil)
    msg = str(err.value)
    assert "is not a weights file" in msg and "system" in msg and "state_dict()" in msg
    assert "weights_only=False" not in msg and "\n" not in msg and not marker.exists()


def test_code_running_pickle_as_shipped_judges_is_one_error(tmp_path):
    """A judges folder whose manifest pins the hostile file (as an attacker would rewrite it)."""
    from repro.data.idx import md5_file
    from repro.figures import judges
    from repro.figures.config import FiguresConfig
    from repro.utils.io import write_json

    marker = tmp_path / "ran"
    weights = tmp_path / judges.WEIGHTS
    torch.save({"window": _RunsCode(marker)}, weights)
    cfg = FiguresConfig()
    write_json(tmp_path / judges.MANIFEST, {
        "kind": "judges", "settings": judges.settings(cfg),
        "files": {judges.WEIGHTS: {"md5": md5_file(weights), "bytes": weights.stat().st_size}}})
    with pytest.raises(ReproError, match=r"shipped judges file .* is not a weights file.*ship the "
                                         "judges again"):
        judges.install(tmp_path, cfg, CPU)
    assert not marker.exists()


def raising_factory():
    raise ValueError("the checkpoint path is not configured")


def test_probe_factory_that_raises_is_one_error():
    from repro.probe import build

    with pytest.raises(ReproError, match=r"test_faults_models:raising_factory\(\) raised "
                                         r"ValueError: the checkpoint path is not configured; the "
                                         "factory must build the model when called with no arguments"):
        build("test_faults_models:raising_factory", None)


@pytest.mark.parametrize("size", ["-5", "0", "x"])
def test_probe_image_size_must_be_positive(size, capsys):
    from repro.probe import main

    with pytest.raises(SystemExit) as exit_:
        main(["--protocol", "table1", "--discriminator", "probe_toy:make_netD",
              "--image-size", size, "--out", "unused"])
    assert exit_.value.code == 2
    assert f"argument --image-size: must be a positive whole number, got '{size}'" in capsys.readouterr().err


def test_probe_image_size_the_model_cannot_take_is_one_error():
    from repro.probe import Probed

    model = probe_toy.make_netD()
    with pytest.raises(ReproError, match=r"the model fails on a \(3, 8, 8\) input .*set "
                                         "--image-size and --channels"):
        Probed(model, ["main.1", "main.4"], pixel_range="tanh", image_size=8, channels=3,
               what="toy", data_source="none")


def test_probe_layer_whose_maps_do_not_pool_to_4x4_is_one_error():
    from torch import nn

    from repro.probe import Probed

    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    with pytest.raises(ReproError, match=r"layer 0 outputs \(7, 7\) maps, not a multiple of 4"):
        Probed(model, ["0", "1"], pixel_range="tanh", image_size=14, channels=3, what="toy",
               data_source="none")
    ok = Probed(model, ["0", "1"], pixel_range="tanh", image_size=16, channels=3, what="toy",
                data_source="none")  # control: 8x8 maps pool to 4x4
    assert ok.feature_vector(torch.zeros(2, 3, 16, 16)).shape == (2, 2 * 4 * 16)


def test_probe_module_that_fails_on_import_is_one_error(tmp_path, monkeypatch):
    from repro.probe import build

    (tmp_path / "broken_netd.py").write_text("raise RuntimeError('CUDA not available')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ReproError, match=r"importing 'broken_netd' raised RuntimeError: CUDA not "
                                         "available; fix the module"):
        build("broken_netd:make", None)
