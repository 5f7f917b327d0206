"""params.yaml + profiles: typed, validated, one section per stage, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from repro.config import available_profiles, load_params, load_section
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
    profile_data = yaml.safe_load((repo_copy / "experiments" / f"{profile}.yaml").read_text())
    for name in profile_data["train"]:
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

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        module = re.search(r"repro\.stages\.(\w+)|repro\.(report)", body["cmd"])
        for entry in body.get("params", []):
            if isinstance(entry, dict):
                (sections,) = entry.values()
                if "foreach" in stage:
                    assert sections == [f"{name}.${{item}}"]
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
    data = yaml.safe_load((repo_copy / "experiments" / f"{profile}.yaml").read_text())
    from repro.stages.table3_curve import CurveConfig

    # sections read by commands outside the pipeline (validated the same way)
    models = {**_stage_models(), "table3_curve": CurveConfig}
    for section in set(data) - {"train"}:
        assert section in models, f"{profile}.yaml has section {section!r} no stage reads"
        load_section(models[section], section, params, repo_copy / "params.yaml")
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert set(dvc["stages"]["train"]["foreach"]) == set(data["train"])
    assert set(_stage_models()) <= set(dvc["stages"])
