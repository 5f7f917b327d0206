"""`python -m repro.probe` adapts to a user's model and says so (issue 31): a grey 32x32 D
without --channels, a 32x32 conditional G cropped to Table 3's 28x28 with --fit pad, profiles
and data folders found from any working directory, a carved validation split, and errors worded
for the probe's flags."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from repro.data.idx import MissingData
from repro.errors import ReproError
from repro.probe.cli import _for_probe, main
from repro.probe.models import FittedG, infer_input
from repro.utils.io import read_cells, read_json

from conftest import REPO
import probe_toy


def _cells(out, table):
    return read_cells(out / "metrics" / f"probe_{table}.json")


def test_input_is_read_off_the_model():
    assert infer_input(probe_toy.make_netD_grey(), None, None)[:2] == (1, 32)
    assert infer_input(probe_toy.make_netD(), None, None)[:2] == (3, 32)
    # a 64x64 D (one more stride-2 conv) is found by the forward pass, not assumed 32
    d64 = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 4, 2, 1), probe_toy.NetD(nc=4).main)
    assert infer_input(d64, None, None)[:2] == (1, 64)
    with pytest.raises(ReproError, match=r"fails on a \(1, 8, 8\) input.*--image-size"):
        infer_input(probe_toy.make_netD_grey(), None, 8)


def test_generator_output_fit_is_named_and_inverts_padding():
    G = probe_toy.make_G32().eval()
    z, y = torch.rand(4, 16) * 2 - 1, torch.arange(4)
    pad = FittedG(G, (1, 32, 32), 1, 28, "pad", "tanh")
    assert torch.equal(pad(z, y), G.inner(z, y))  # the crop undoes the 2-px black frame
    assert pad.deviations == ["generator output centre-cropped 32x32 -> 28x28 (2 px each side; "
                              "--fit pad: the inverse of zero-padding 28 -> 32)"]
    resize = FittedG(G, (1, 32, 32), 1, 28, "resize", "tanh")
    assert resize(z, y).shape == (4, 1, 28, 28) and "resized 32x32 -> 28x28" in resize.deviations[0]
    assert FittedG(G.inner, (1, 28, 28), 1, 28, "pad", "tanh").deviations == []


def test_grey_discriminator_without_channels_on_grey_data(tmp_path, monkeypatch):
    """Table 2 on mnist_5k (no validation split: one is carved from train), Table 1 with a
    grey model on grey data; no --channels, no --image-size, run outside the repository."""
    torch.save(probe_toy.make_netD_grey().state_dict(), tmp_path / "netD.pt")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text("protocol: table2\nmax_train: 1200\nmax_test: 300\nn_valid: 200\n"
                    "per_class: 10\nselect_draws: 1\ntest_draws: 2\nsvm: {C_grid: [0.001]}\n")
    common = ["--discriminator", "probe_toy:make_netD_grey", "--weights", "netD.pt",
              "--layers", "main.1,main.4,main.7", "--device", "cpu", "--no-baseline"]
    main(["--protocol", str(spec), "--dataset", "mnist_5k", "--out", "o2", *common])
    cell = _cells(tmp_path / "o2", "table2")["probe/table2/yours/err@1000"]
    assert cell["protocol"]["input"].startswith("1x32x32 (read from main.0.in_channels")
    assert cell["protocol"]["n_valid"] == 200 and cell["protocol"]["n_pool"] == 1000
    assert not any("replicated" in d for d in cell["deviations"])  # grey stays grey
    assert any("resized 28x28 -> 32x32" in d for d in cell["deviations"])
    prov = read_json(tmp_path / "o2" / "provenance" / "probe_table2.json")["probe"]
    assert prov["input"] == {"channels": 1, "image_size": 32,
                             "found_by": "main.0.in_channels, a probe forward pass"}
    assert prov["factory"] == "probe_toy:make_netD_grey" and len(prov["weights_sha256"]) == 64
    assert any("carved" in n for n in prov["notes"])
    report = (tmp_path / "o2" / "probe_table2.md").read_text()
    assert "on `mnist_5k`" in report and "Test error % (100 labels, 2 draws)" in report

    spec.write_text("protocol: table1\nmax_train: 600\nmax_test: 200\nn_valid: 100\n"
                    "per_class: 10\ndraws: 2\nselect_draws: 1\nsvm: {C_grid: [0.001]}\n")
    main(["--protocol", str(spec), "--dataset", "synth_digits", "--fit", "pad", "--out", "o1",
          *common])
    cells = _cells(tmp_path / "o1", "table1")
    assert cells["probe/table1/yours/acc"]["value"] is not None
    assert any("zero-padded 28x28 -> 32x32" in d for d in cells["probe/table1/yours/acc"]["deviations"])


def test_conditional_32x32_generator_by_table3_with_fit(tmp_path, monkeypatch, capsys):
    torch.save(probe_toy.make_G32().state_dict(), tmp_path / "G.pt")
    monkeypatch.chdir(tmp_path)
    main(["--protocol", "table3", "--dataset", "synth_digits", "--profile", "smoke",
          "--generator", "probe_toy:make_G32", "--weights", "G.pt", "--z-dim", "16",
          "--fit", "pad", "--device", "cpu", "--out", "o3"])
    printed = capsys.readouterr().out
    assert "estimated time" in printed and "the default (uniform" in printed
    cells = _cells(tmp_path / "o3", "table3")
    for cid in ("probe/table3/yours/err@50k", "probe/table3/yours/err@10m", "probe/table3/real/err@50k"):
        assert cells[cid]["protocol"]["z_dist"].startswith("uniform (set by the default")
    mine = cells["probe/table3/yours/err@50k"]
    crop = ("generator output centre-cropped 32x32 -> 28x28 (2 px each side; --fit pad: the "
            "inverse of zero-padding 28 -> 32)")
    assert crop in mine["deviations"]
    real = cells["probe/table3/real/err@50k"]  # the real row never went through the generator
    assert not any("generator output" in d for d in real["deviations"])
    assert {"field": "preprocessing", "paper": [], "run": [crop]} in mine["protocol_diff"]
    report = (tmp_path / "o3" / "probe_table3.md").read_text()
    assert "z_dist: uniform" in report and "1-NN on" in report and "centre-cropped" in report
    assert report.index("**yours**") < report.index("**real**")


def test_profile_demo_from_a_folder_outside_the_repository(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "REPRO_PROGRESS": "0"}
    res = subprocess.run([sys.executable, "-m", "repro.probe", "--protocol", "table3",
                          "--profile", "demo", "--show-spec"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "profile demo" in res.stdout and '"mnist_5k"' in res.stdout
    res = subprocess.run([sys.executable, "-m", "repro.probe", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert "fashion_mnist (train/test)" in res.stdout and "main.1,main.4,main.7" in res.stdout


def test_missing_data_error_names_the_probe_flags():
    from repro.data.real import MNIST

    with pytest.raises(MissingData) as err:
        MNIST.read_official("t10k", root="/nonexistent", download=False, search=[])
    msg = _for_probe(str(err.value))
    assert "params.yaml" not in msg and "--data-root" in msg and "--data-search DIR" in msg
    offline = _for_probe("could not download MNIST: 3 tries with a 20 s timeout failed")
    assert offline.endswith("--data-search DIR (--no-download: never download)")


def test_paper_size_table3_on_a_cpu_is_warned_before_it_starts():
    from repro.probe import plan
    from repro.probe.models import UserVariant
    from repro.models.base import VariantSpec
    from repro.tables import TABLES
    from repro.tables.table3 import Table3Config

    G = FittedG(probe_toy.make_G().eval(), (1, 28, 28), 1, 28, "resize", "tanh")
    variant = UserVariant(VariantSpec(name="g", image_size=28, channels=1, z_dim=16,
                                      z_dist="uniform", n_classes=10, pixel_range="tanh",
                                      feature_dim=0, description=""))
    cpu = torch.device("cpu")
    unit = TABLES.get("table3")
    paper = plan.generator(unit, Table3Config(), G, variant, cpu)
    assert "samples: 10,000,000" in paper[0] and "WARNING: 10,000,000 samples" in paper[-1]
    small = plan.generator(unit, Table3Config(n_samples={"50k": 500, "10m": 2000}), G, variant,
                           cpu)
    assert not any("WARNING" in line for line in small)


def test_the_readme_example_model_is_what_the_probe_reads(monkeypatch):
    """docs/examples/mygan.py: a pytorch/examples-style D and conditional G, 1-channel 32x32."""
    monkeypatch.syspath_prepend(str(REPO / "docs" / "examples"))
    import mygan

    D, G = mygan.make_netD().eval(), mygan.make_condG().eval()
    assert infer_input(D, None, None)[:2] == (1, 32)
    assert dict(D.named_modules())["main.7"].__class__.__name__ == "LeakyReLU"
    with torch.no_grad():
        assert G(torch.randn(2, 100), torch.tensor([3, 7])).shape == (2, 1, 32, 32)


def test_finished_rows_resume_only_under_the_same_probe_options():
    """An interrupted probe's finished rows are reused under a key that holds every option it
    ran with (ProbeStage.identity): a rerun with other --layers measures again."""
    from types import SimpleNamespace

    from repro.protocols.rows import stage_key

    def key(layers):
        stage = SimpleNamespace(name="probe_table2", device=torch.device("cpu"), params={},
                                identity={"layers": layers, "discriminator": "mygan:make_netD"})
        return stage_key(stage, {"dataset": "synth_digits"}, "inputs")

    assert key("main.1,main.4") == key("main.1,main.4")
    assert key("main.1,main.4") != key("main.1,main.4,main.7")


def test_the_plan_reads_a_tables_counts_from_its_unit():
    """The probe's plan asks the table's unit for its counts (TableUnit.plan): Tables 1 and 2
    declare them; a unit that declares none gets a line saying so, not a crash."""
    import dataclasses

    from repro.probe import plan
    from repro.tables import TABLES

    for name in ("table1", "table2"):
        unit = TABLES.get(name)
        counts = unit.plan(unit.config(dataset="synth_digits"), True)
        assert counts.images > 0 and counts.draw_fits > 0 and "test" in counts.sets
    bare = dataclasses.replace(TABLES.get("table2"), plan=None)
    assert plan.discriminator(bare, None, None, 2, torch.device("cpu"), True, None) == [
        "  (table2 declares no plan counts: no time estimate)"]
