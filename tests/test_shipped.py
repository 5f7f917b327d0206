"""Shipped checkpoints (repro.train.shipped): shipping strips a finished run to weights, installing
verifies md5s and the train section before copying anything, every profile that names a
shipped folder states the section it was trained with, and the longer profile retraces the
shipped run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from repro.config import available_profiles
from repro.data.idx import MissingData
from repro.errors import ReproError
from repro.models.checkpoint import build_from_checkpoint
from repro.report.smoke_gate import K
from repro.train.config import TrainConfig
from repro.train.shipped import PACKED, install, pack, ship, stored_bytes, unpack, verify
from repro.train.trainer import GANTrainer
from repro.utils.platform import fingerprint, fingerprint_id

import shipped_retrace
from conftest import tiny_images

ROOT, SHIPPED, LONG_PROFILE = shipped_retrace.ROOT, shipped_retrace.SHIPPED, shipped_retrace.LONG_PROFILE
_profile = shipped_retrace.profile
_shipped_sections = shipped_retrace.shipped_sections


def _finished_run(tmp_path: Path, name: str = "tiny") -> tuple[Path, dict]:
    """A run folder laid out like results/ (checkpoints/, live/, provenance/) for a 2-step run."""
    cfg = TrainConfig(variant="gan_mlp", dataset="synth_digits", epochs=1, batch_size=8,
                      max_steps=2, log_every=1)
    run = tmp_path / "run"
    ckpt_dir = run / "checkpoints" / name
    data = tiny_images(16, 1, 28)
    GANTrainer(cfg, data, torch.device("cpu"), ckpt_dir / "seed0.pt",
               extra={"profile": "cpu", "dry_run": False, "deviations": ["a training deviation"]}).run(0)
    (ckpt_dir / "samples_final.png").write_bytes(b"png")
    (run / "live" / name).mkdir(parents=True)
    (run / "live" / name / "metrics.json").write_text("{}")
    prov = {"profile": "cpu", "dry_run": False, "variant": "gan_mlp", "seeds": [0],
            "git": {"revision": "abc", "dirty": False}, "params_hash": "h", "platform": {},
            "wall_time_s": 1.0, "runs": [],
            # as the train stage writes it: its section, `shipped` key included
            "config": {**cfg.model_dump(mode="json"), "shipped": None}}
    (run / "provenance").mkdir()
    (run / "provenance" / f"train_{name}.json").write_text(json.dumps(prov))
    return run, cfg.model_dump(mode="json")


def test_ship_keeps_weights_only_and_names_the_origin(tmp_path):
    run, section = _finished_run(tmp_path)
    manifest = ship("tiny", run, tmp_path / "shipped")
    assert set(manifest["files"]) == {"seed0.pt", "samples_final.png", "live/metrics.json"}
    folder = tmp_path / "shipped" / "tiny"
    assert not (folder / "seed0.pt").exists() and (folder / ("seed0.pt" + PACKED)).is_file()
    ckpt = torch.load(io.BytesIO(stored_bytes(folder, "seed0.pt")), weights_only=True)
    assert not {"opt_g", "opt_d", "noise_rng", "cpu_rng"} & set(ckpt)
    assert ckpt["deviations"][0] == "a training deviation"
    assert "shipped checkpoint (tiny): trained by profile cpu" in ckpt["deviations"][-1]
    install(folder, {**section, "shipped": "tiny"}, tmp_path / "out", None)
    variant, G, D, _ = build_from_checkpoint(tmp_path / "out" / "seed0.pt", "gan_mlp")
    assert variant.spec.name == "gan_mlp"


@pytest.mark.parametrize("n", [0, 1, 7, 4096, 4099])
def test_pack_is_lossless_and_smaller_on_float32_weights(n):
    data = torch.randn(n // 4).numpy().tobytes() + bytes(range(n % 4))
    assert unpack(pack(data)) == data
    weights = (0.02 * torch.randn(100_000)).numpy().tobytes()
    assert len(pack(weights)) < 0.9 * len(weights)  # the exponent plane compresses


def test_ship_refuses_dry_runs(tmp_path):
    run, _ = _finished_run(tmp_path)
    prov = run / "provenance" / "train_tiny.json"
    prov.write_text(json.dumps({**json.loads(prov.read_text()), "dry_run": True}))
    with pytest.raises(ReproError, match="dry run"):
        ship("tiny", run, tmp_path / "shipped")


def test_install_copies_after_verifying(tmp_path):
    run, section = _finished_run(tmp_path)
    ship("tiny", run, tmp_path / "shipped")
    out, live = tmp_path / "out", tmp_path / "live"
    install(tmp_path / "shipped" / "tiny", {**section, "shipped": "tiny"}, out, live)
    ckpt = run / "checkpoints" / "tiny" / "seed0.pt"
    assert (out / "seed0.pt").read_bytes() == stored_bytes(tmp_path / "shipped" / "tiny", "seed0.pt")
    assert torch.load(out / "seed0.pt", weights_only=True)["generator"].keys() == \
        torch.load(ckpt, weights_only=True)["generator"].keys()
    assert (live / "metrics.json").is_file()


def test_install_refuses_a_damaged_file_before_copying(tmp_path):
    run, section = _finished_run(tmp_path)
    ship("tiny", run, tmp_path / "shipped")
    folder = tmp_path / "shipped" / "tiny"
    target = folder / ("seed0.pt" + PACKED)
    good = target.read_bytes()
    target.write_bytes(good[:100])  # truncated, as a broken LFS checkout would be
    with pytest.raises(ReproError, match="cannot be unpacked.*restore it from git"):
        install(folder, section, tmp_path / "out", None)
    # intact packing, other content: the md5 check catches it
    target.write_bytes(pack(unpack(good)[:-1] + b"x"))
    with pytest.raises(ReproError, match="does not match its md5.*restore it from git"):
        install(folder, section, tmp_path / "out", None)
    target.unlink()
    with pytest.raises(ReproError, match="seed0.pt is missing"):
        install(folder, section, tmp_path / "out", None)
    assert not (tmp_path / "out").exists()


def test_install_refuses_another_section_naming_the_keys(tmp_path):
    run, section = _finished_run(tmp_path)
    ship("tiny", run, tmp_path / "shipped")
    with pytest.raises(ReproError, match=r"differs in: batch_size, epochs"):
        install(tmp_path / "shipped" / "tiny", {**section, "epochs": 5, "batch_size": 4},
                tmp_path / "out", None)
    with pytest.raises(ReproError, match="has no manifest.json"):
        install(tmp_path / "nowhere", section, tmp_path / "out", None)


def test_a_section_that_names_the_shipped_folder_installs_it(tmp_path):
    run, section = _finished_run(tmp_path)
    ship("tiny", run, tmp_path / "shipped")
    install(tmp_path / "shipped" / "tiny", {**section, "shipped": "tiny"}, tmp_path / "out", None)
    assert (tmp_path / "out" / "seed0.pt").is_file()


@pytest.mark.parametrize("profile,name,section", _shipped_sections(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_the_train_stage_installs_each_profiles_shipped_section(profile, name, section, tmp_path):
    from repro.stages.train import TrainStageConfig

    install(SHIPPED / section["shipped"], TrainStageConfig.model_validate(section),
            tmp_path / "out", None)


@pytest.mark.parametrize("profile,name,section", _shipped_sections(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_profiles_state_how_their_shipped_weights_were_made(profile, name, section):
    """A profile installing a shipped model extends the longer profile that trained it and
    changes nothing of that section but `shipped` (so rerunning the longer profile retrains
    exactly the shipped model), and the section validates to the manifest's config."""
    from repro.config import profile_chain
    from repro.stages.train import TrainStageConfig

    manifest = verify(SHIPPED / section["shipped"])  # every md5 matches
    assert LONG_PROFILE in profile_chain(profile, ROOT / "experiments")
    assert "shipped" not in _profile(LONG_PROFILE)["train"][name]
    assert manifest["profile"] == LONG_PROFILE and manifest["variant"] == section["variant"]
    dump = TrainStageConfig.model_validate(section).model_dump(mode="json")
    assert {k: v for k, v in dump.items() if k != "shipped"} == manifest["config"]


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped_retrace.shipped_names())
def test_long_profile_retraces_the_shipped_run(name, tmp_path):
    """The longer profile's first two logged loss windows equal the shipped run's DVCLive log:
    exactly on the platform that trained it; elsewhere within K x the seed spread of each
    window (K = 4, the drift gate's; tests/golden/shipped_loss_spread.json, see
    tests/shipped_retrace.py): on another CPU's float kernels the run drifts as far from the
    shipped one as another seed."""
    manifest = verify(SHIPPED / name)
    try:
        ours, here = shipped_retrace.retrace(name, manifest["seeds"][0], tmp_path)
    except (MissingData, ReproError) as err:
        if "not found" in str(err) or "missing" in str(err).lower():
            pytest.skip(f"training data of {name} not on this machine: {err}")
        raise
    if here != manifest["runs"][0]["data_source"]:
        # e.g. mnist_5k without the official test split holds out 1,000 of its 5,000 digits
        pytest.skip(f"training data here differs from the shipped run's: {here!r}")
    shipped = shipped_retrace.losses(SHIPPED / name / "live")
    assert len(ours) == shipped_retrace.WINDOWS and len(shipped) >= shipped_retrace.WINDOWS
    same_platform = fingerprint_id(manifest["platform"]) == fingerprint_id(fingerprint())
    std = json.loads(shipped_retrace.GOLDEN.read_text())["sections"][name]["std"]
    for row, (mine, theirs) in enumerate(zip(ours, shipped)):
        for key, a, b, s in zip(("loss_d", "loss_g"), mine, theirs, std[row]):
            if same_platform:
                assert a == b, f"log row {row} {key}: {a} != {b} on the platform that trained it"
            else:
                assert abs(a - b) <= K * s, (f"log row {row} {key}: {a} vs the shipped {b}, "
                                             f"more than {K:g} x its seed spread {s:.4g}")


def _shipped_judges() -> list[tuple[str, dict]]:
    """(profile, figures section) for every profile whose figures install shipped judges."""
    return [(p, fig) for p in available_profiles(ROOT / "experiments")
            if (fig := _profile(p).get("figures") or {}).get("shipped_judges")]


def test_some_profile_installs_shipped_judges():
    assert _shipped_judges(), "no profile names figures.shipped_judges: drop this test with them"


@pytest.mark.parametrize("profile,section", _shipped_judges(), ids=lambda v: v if isinstance(v, str) else "")
def test_profiles_shipped_judges_verify_and_match_their_settings(profile, section):
    from repro.figures import judges
    from repro.figures.config import FiguresConfig

    cfg = FiguresConfig.model_validate(section)
    installed = judges.install(SHIPPED / section["shipped_judges"], cfg, torch.device("cpu"))
    assert installed["note"].startswith(f"judges from a shipped folder ({section['shipped_judges']})")
    manifest = verify(SHIPPED / section["shipped_judges"])
    # The profile that trained them sets the same judges: rerunning it retraces them.
    trained_by = FiguresConfig.model_validate(_profile(manifest["profile"])["figures"])
    assert judges.settings(trained_by) == manifest["settings"] == judges.settings(cfg)
    assert not trained_by.shipped_judges and manifest["seeds"] == judges.seeds(trained_by)
