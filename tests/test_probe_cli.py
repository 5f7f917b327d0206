"""`python -m repro.probe` end to end on CPU: a tiny D laid out like the PyTorch DCGAN example
(tests/probe_toy.py) probed by Tables 1 and 2's protocols, a tiny conditional G by Table 3's,
on generated data with the smoke profile's sizes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from repro.config import load_profile_by_name
from repro.errors import ReproError
from repro.probe import Probed, main
from repro.utils.io import read_cells

from conftest import REPO
import probe_toy


@pytest.fixture
def weights(tmp_path):
    torch.save(probe_toy.make_netD().state_dict(), tmp_path / "netD.pt")
    torch.save(probe_toy.make_G().state_dict(), tmp_path / "G.pt")
    return tmp_path


def _cells(out, table):
    return read_cells(out / "metrics" / f"probe_{table}.json")


def test_table2_protocol_end_to_end_as_a_command(weights, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "repro.probe", "--protocol", "table2", "--dataset", "synth_digits",
           "--profile", "smoke", "--discriminator", "probe_toy:make_netD",
           "--weights", str(weights / "netD.pt"), "--layers", "main.1,main.4,main.7",
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "REPRO_PROGRESS": "0"}
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    cells = _cells(out, "table2")
    assert set(cells) == {"probe/table2/yours/err@1000", "probe/table2/raw_pixels/err@1000"}
    mine = cells["probe/table2/yours/err@1000"]
    draws = load_profile_by_name("smoke")["table2"]["test_draws"]
    assert 0 <= mine["value"] <= 100 and mine["n_runs"] == draws  # one run per test draw
    assert mine["protocol"]["feature_dim"] == 16 * (8 + 16 + 32)
    assert mine["comparable"] is False
    assert {"field": "dataset", "paper": "svhn", "run": "synth_digits"} in mine["protocol_diff"]
    report = (out / "probe_table2.md").read_text()
    assert "**yours** (measured on synth_digits)" in report and "DCGAN (ours) + L2-SVM (paper)" in report
    assert (out / "provenance" / "probe_table2.json").is_file()


def test_table1_and_table3_protocols_in_process(weights, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    out = tmp_path / "out"
    main(["--protocol", "table1", "--dataset", "synth_colour10", "--profile", "smoke",
          "--discriminator", "probe_toy:make_netD", "--weights", str(weights / "netD.pt"),
          "--layers", "main.1,main.4,main.7", "--pretraining-data", "imagenet32",
          "--no-baseline", "--device", "cpu", "--out", str(out)])
    cells = _cells(out, "table1")
    assert set(cells) == {f"probe/table1/yours/{c}" for c in ("acc", "acc@400pc", "max_features")}
    assert cells["probe/table1/yours/max_features"]["value"] == 32  # the widest named layer
    fields = {d["field"] for d in cells["probe/table1/yours/acc"]["protocol_diff"]}
    assert "pretraining_data" not in fields and {"dataset", "n_train", "real_data"} <= fields
    main(["--protocol", "table3", "--dataset", "synth_digits", "--profile", "smoke",
          "--generator", "probe_toy:make_G", "--weights", str(weights / "G.pt"),
          "--z-dim", "16", "--device", "cpu", "--out", str(out)])
    cells = _cells(out, "table3")
    assert {"probe/table3/yours/err@50k", "probe/table3/yours/err@10m",
            "probe/table3/real/err@50k"} == set(cells)
    # --profile smoke: the sample count is the smoke profile's, not the paper's 10M
    smoke = load_profile_by_name("smoke")
    assert cells["probe/table3/yours/err@10m"]["protocol"]["n_samples"] == \
        smoke["table3"]["n_samples"]["10m"]
    assert "Real Data (paper)" in (out / "probe_table3.md").read_text()


def test_bad_inputs_are_one_clear_error(weights, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    with pytest.raises(ReproError, match="valid names: main"):
        Probed(probe_toy.make_netD(), ["main.99"], pixel_range="tanh", image_size=32,
               channels=3, what="", data_source="")
    base = ["--dataset", "synth_digits", "--profile", "smoke", "--out", str(tmp_path / "o"),
            "--device", "cpu"]
    for argv, msg in (
            (["--protocol", "table9", "--discriminator", "probe_toy:make_netD"], "valid names"),
            (["--protocol", "table3", "--discriminator", "probe_toy:make_netD"], "generator"),
            (["--protocol", "table2", "--discriminator", "probe_toy:nothing", "--layers", "x"],
             "has no 'nothing'"),
            (["--protocol", "table3", "--generator", "probe_toy:make_netD"], "G(z, y)")):
        with pytest.raises(SystemExit):
            main(argv + base)
        assert msg in capsys.readouterr().err
