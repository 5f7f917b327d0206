"""The GAN trainer: bit-identical determinism on CPU, resume equivalence, schedule, errors."""

from __future__ import annotations

import pytest
import torch

from repro.errors import ReproError
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer
from repro.utils.device import resolve_device

from conftest import tiny_images

CPU = resolve_device("cpu")


def _cfg(**kw) -> TrainConfig:
    base = dict(variant="mnist_cond", dataset="tiny", epochs=1, decay_epochs=1, batch_size=16,
                weight_decay=2.5e-5, alternate_updates=True, log_every=2, checkpoint_every=3)
    base.update(kw)
    return TrainConfig(**base)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_gives_identical_weights(tmp_path, tiny_mnist):
    runs = []
    for i in range(2):
        t = GANTrainer(_cfg(), tiny_mnist, CPU, tmp_path / f"r{i}.pt")
        t.run(seed=3)
        runs.append(torch.load(tmp_path / f"r{i}.pt", weights_only=False))
    assert _states_equal(runs[0]["generator"], runs[1]["generator"])
    assert _states_equal(runs[0]["discriminator"], runs[1]["discriminator"])
    other = GANTrainer(_cfg(), tiny_mnist, CPU, tmp_path / "o.pt")
    other.run(seed=4)
    o = torch.load(tmp_path / "o.pt", weights_only=False)
    assert not _states_equal(runs[0]["generator"], o["generator"])


def test_checkpoint_carries_config_git_and_seed(tmp_path, tiny_mnist):
    GANTrainer(_cfg(), tiny_mnist, CPU, tmp_path / "c.pt").run(seed=5)
    ck = torch.load(tmp_path / "c.pt", weights_only=False)
    assert ck["seed"] == 5 and ck["complete"] is True
    assert ck["config"] == _cfg().model_dump(mode="json")
    assert {"revision", "dirty"} <= set(ck["git"])
    assert ck["variant"] == "mnist_cond" and ck["step"] == 8  # 2 epochs x 64 // 16


def test_resume_after_kill_reaches_same_weights(tmp_path, tiny_mnist):
    full = GANTrainer(_cfg(), tiny_mnist, CPU, tmp_path / "full.pt")
    full.run(seed=1)
    ref = torch.load(tmp_path / "full.pt", weights_only=False)

    class Killed(Exception):
        pass

    def kill_at_5(metrics):
        if metrics["step"] >= 5:  # after the step-3 checkpoint, mid second epoch
            raise Killed

    part = GANTrainer(_cfg(log_every=1), tiny_mnist, CPU, tmp_path / "part.pt", on_log=kill_at_5)
    with pytest.raises(Killed):
        part.run(seed=1)
    mid = torch.load(tmp_path / "part.pt", weights_only=False)
    assert mid["complete"] is False and mid["step"] == 3
    resumed = GANTrainer(_cfg(log_every=1), tiny_mnist, CPU, tmp_path / "part.pt")
    resumed.run(seed=1, resume=True)
    got = torch.load(tmp_path / "part.pt", weights_only=False)
    assert got["step"] == ref["step"]
    assert _states_equal(ref["generator"], got["generator"])
    assert _states_equal(ref["discriminator"], got["discriminator"])


def test_resume_refuses_other_config(tmp_path, tiny_mnist):
    GANTrainer(_cfg(), tiny_mnist, CPU, tmp_path / "c.pt").run(seed=0)
    with pytest.raises(ReproError, match="another config"):
        GANTrainer(_cfg(lr=0.001), tiny_mnist, CPU, tmp_path / "c.pt").run(seed=0, resume=True)


def test_lr_schedule_matches_authors_decay():
    cfg = _cfg(epochs=100, decay_epochs=100, lr=0.0002)
    assert cfg.lr_at(0) == cfg.lr_at(100) == 0.0002
    assert cfg.lr_at(150) == pytest.approx(0.0001)
    assert cfg.lr_at(199) == pytest.approx(0.0002 / 100)


def test_unconditional_variant_trains_and_unlabelled_data_rejected_for_conditional(tmp_path):
    data = tiny_images(32, 3, 32, n_classes=0)
    GANTrainer(_cfg(variant="svhn32", alternate_updates=False, epochs=1, decay_epochs=0),
               data, CPU, tmp_path / "s.pt").run(seed=0)
    with pytest.raises(ReproError, match="no labels"):
        GANTrainer(_cfg(), data, CPU, tmp_path / "m.pt")


@pytest.mark.parametrize("bad", [dict(batch_size=0), dict(epochs=-1), dict(lr=0), dict(seeds=[])])
def test_bad_sizes_are_rejected(bad):
    from repro.config import validate

    with pytest.raises(ReproError, match="invalid config"):
        validate(TrainConfig, {**_cfg().model_dump(), **bad}, "train.x")


def test_too_few_images_for_a_batch(tmp_path):
    with pytest.raises(ReproError, match="fewer than batch_size"):
        GANTrainer(_cfg(batch_size=128), tiny_images(64, 1, 28), CPU, tmp_path / "x.pt")
