"""params.yaml + profiles: typed, validated, one section per stage, clear errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from repro.config import (REPO_PROFILES, available_profiles, load_params, load_profile_by_name,
                          load_section, merge)
from repro.errors import ReproError
from repro import registry as registry_module
from repro.registry import DATASETS, MODELS, Registry
from repro.train.config import TrainConfig
from repro.stages.train import TrainStageConfig

from conftest import REPO


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "experiments", tmp_path / "experiments")
    return tmp_path


def _set(path: Path, **kw) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(kw)
    path.write_text(yaml.safe_dump(data))


def test_profiles_exist():
    assert {"smoke", "demo", "paper"} <= set(available_profiles(REPO / "experiments"))


@pytest.mark.parametrize("profile", available_profiles(REPO / "experiments"))
def test_every_profile_has_valid_train_sections(repo_copy, profile):
    _set(repo_copy / "params.yaml", profile=profile)
    params = load_params(repo_copy / "params.yaml")
    for name in load_profile_by_name(profile)["train"]:
        cfg = load_section(TrainStageConfig, f"train.{name}", params, repo_copy / "params.yaml")
        assert cfg.variant in MODELS
        assert cfg.dataset in DATASETS


def test_unknown_profile_lists_valid_ones(repo_copy):
    _set(repo_copy / "params.yaml", profile="nope")
    with pytest.raises(ReproError, match="unknown profile 'nope'; valid names: .*demo.*paper.*smoke"):
        load_params(repo_copy / "params.yaml")


def test_unknown_key_and_bad_size_name_the_key(repo_copy):
    params = load_params(repo_copy / "params.yaml")
    prof = repo_copy / "experiments" / f"{params.profile}.yaml"
    data = yaml.safe_load(prof.read_text())
    name = next(iter(data["train"]))
    data["train"][name]["batch_sise"] = 3
    prof.write_text(yaml.safe_dump(data))
    with pytest.raises(ReproError, match=rf"train\.{name}\.batch_sise"):
        load_section(TrainConfig, f"train.{name}", params, repo_copy / "params.yaml")
    del data["train"][name]["batch_sise"]
    data["train"][name]["epochs"] = 0
    prof.write_text(yaml.safe_dump(data))
    with pytest.raises(ReproError, match=rf"train\.{name}\.epochs"):
        load_section(TrainConfig, f"train.{name}", params, repo_copy / "params.yaml")


def test_missing_section_is_named(repo_copy):
    params = load_params(repo_copy / "params.yaml")
    with pytest.raises(ReproError, match="no section 'train.nothing'"):
        load_section(TrainConfig, "train.nothing", params, repo_copy / "params.yaml")


@pytest.mark.parametrize("registry", [r for r in vars(registry_module).values()
                                      if isinstance(r, Registry)], ids=lambda r: r.kind)
def test_unknown_names_list_the_valid_ones(registry):
    names = registry.names()
    with pytest.raises(ReproError, match=f"unknown {registry.kind} 'zzz'; valid names: "):
        registry.get("zzz")
    if names:
        with pytest.raises(ReproError, match=names[0]):
            registry.get("zzz")


def test_dvc_yaml_declares_exactly_the_sections_stages_read():
    """Each stage's profile params are its own section, and the stage opens that section."""
    import re

    from repro.stages.check_config import PARAMS_OUT

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        module = re.search(r"repro\.stages\.(\w+)|repro\.(report)", body["cmd"])
        for entry in body.get("params", []):
            if isinstance(entry, dict):
                # the resolved profile check_config writes, never a profile file of the chain
                assert list(entry) == [PARAMS_OUT], name
                (sections,) = entry.values()
                if "foreach" in stage:
                    assert sections == [f"{name}.${{key}}"]
                else:
                    assert sections == [name]
        assert module, name


def _stage_models():
    """section -> its config type: the tables' from their units (repro.tables), the other
    stages' named here."""
    from repro.figures.config import FiguresConfig
    from repro.stages.port_svhn import PortConfig
    from repro.tables import units

    return {"port_svhn": PortConfig, "figures": FiguresConfig,
            **{name: unit.config for name, unit in units().items()}}


@pytest.mark.parametrize("profile", available_profiles(REPO / "experiments"))
def test_every_profile_section_validates_and_dvc_runs_every_train_section(repo_copy, profile):
    _set(repo_copy / "params.yaml", profile=profile)
    params = load_params(repo_copy / "params.yaml")
    data = load_profile_by_name(profile)
    from repro.stages.check_config import stage_sections
    from repro.stages.table3_curve import CurveConfig

    # sections read by commands outside the pipeline (validated the same way)
    models = {**_stage_models(), "table3_curve": CurveConfig}
    for section in set(data) - {"train"}:
        assert section in models, f"{profile}.yaml has section {section!r} no stage reads"
        load_section(models[section], section, params, repo_copy / "params.yaml")
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    # a train@<name> stage per train section of the base profile; a profile holds a subset
    trained = {s.split(".", 1)[1] for s in stage_sections(REPO / "dvc.yaml") if s.startswith("train.")}
    assert trained == set(load_profile_by_name("paper")["train"])
    assert set(data["train"]) <= trained
    assert set(_stage_models()) <= set(dvc["stages"])


# --- profiles by overlay --------------------------------------------------------------------

def _leaves(node, path=""):
    """Dotted path -> value of every leaf (a list is one leaf, as it replaces whole)."""
    if isinstance(node, dict) and node:
        return {k: v for key, child in node.items()
                for k, v in _leaves(child, f"{path}.{key}" if path else key).items()}
    return {path: node}


def test_params_and_profiles_hold_at_most_300_leaf_keys():
    files = [REPO / "params.yaml", *sorted((REPO / "experiments").glob("*.yaml"))]
    counts = {f.name: len(_leaves(yaml.safe_load(f.read_text()))) for f in files}
    assert sum(counts.values()) <= 300, counts


@pytest.mark.parametrize("profile", available_profiles(REPO / "experiments"))
def test_a_profile_holds_only_what_differs_from_what_it_extends(profile):
    """No profile is a copy: each but the base extends another, and none of its settings
    restates the value it would inherit."""
    raw = yaml.safe_load((REPO / "experiments" / f"{profile}.yaml").read_text())
    if profile == "paper":
        assert "extends" not in raw
        return
    parent = load_profile_by_name(raw["extends"])
    own = _leaves({k: v for k, v in raw.items() if k not in ("extends", "remove")})
    inherited = _leaves(parent)
    assert [k for k, v in own.items() if k in inherited and inherited[k] == v] == []


def test_overlay_merges_mappings_replaces_lists_and_removes(tmp_path):
    assert merge({"a": {"x": 1, "y": [1, 2]}, "b": 1}, {"a": {"y": [3]}, "c": 2}) == \
        {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(
        {"train": {"m": {"epochs": 5, "seeds": [0, 1]}, "n": {"epochs": 1}},
         "figures": {"turn": {"Eyeglasses": 1}}}))
    (tmp_path / "kid.yaml").write_text(yaml.safe_dump(
        {"extends": "base", "remove": ["train.n", "figures.turn"],
         "train": {"m": {"seeds": [2]}}, "figures": {"turn": {"bed": 0}}}))
    assert load_profile_by_name("kid", tmp_path) == {
        "train": {"m": {"epochs": 5, "seeds": [2]}}, "figures": {"turn": {"bed": 0}}}


@pytest.mark.parametrize("kid, message", [
    ({"extends": "base", "remove": ["train.nn"]}, "kid: remove: 'train.nn' is not set by the profile it extends"),
    ({"extends": "nobody"}, "profile 'nobody' not found"),
    ({"extends": "kid"}, "extends: 'kid' must name another profile, without a cycle"),
    ({"extends": "base", "remove": "train.n"}, "kid.remove: must be a list"),
])
def test_overlay_errors_name_the_key(tmp_path, kid, message):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"train": {"n": {"epochs": 1}}}))
    (tmp_path / "kid.yaml").write_text(yaml.safe_dump(kid))
    with pytest.raises(ReproError, match=re.escape(message)):
        load_profile_by_name("kid", tmp_path)


def test_profiles_are_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert REPO_PROFILES == REPO / "experiments"
    demo = load_profile_by_name("demo")
    assert demo["train"]["lsun64"]["shipped"] == "lsun64" and "faces64" not in demo["train"]


def test_a_train_section_the_profile_leaves_out_is_recorded_not_trained(repo_copy, monkeypatch):
    from repro.stages.check_config import NOT_IN_PROFILE, check
    from repro.stages.train import run

    resolved = check(repo_copy / "params.yaml", REPO / "dvc.yaml")
    assert resolved["train"]["faces64"] == NOT_IN_PROFILE
    assert resolved["chain"] == ["paper", "cpu", "demo"]
    monkeypatch.chdir(repo_copy)
    out, live, prov = repo_copy / "ck", repo_copy / "live", repo_copy / "prov"
    out.mkdir()
    (out / "seed0.pt").write_text("an earlier profile's")
    run("faces64", out, live, prov, resume=False)
    assert [p.name for p in out.iterdir()] == ["not_in_profile.json"]
    assert (live / "plots" / "metrics").is_dir() and (live / "metrics.json").is_file()
    note = yaml.safe_load((prov / "train_faces64.json").read_text())
    assert note["profile"] == "demo" and "leaves train.faces64 out" in note["not_in_profile"]
