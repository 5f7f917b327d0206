"""dvc.yaml declares exactly the code each stage can load, so `dvc repro` never calls a stale
result up to date. Regenerate the lists with `python -m repro.utils.imports --sync dvc.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repro.utils.imports import PACKAGE, covers, minimal_cover, module_files, stage_module

from conftest import REPO


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: (st["do"] if "foreach" in st else st) for name, st in stages.items()}


def _code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if isinstance(d, str) and d.split("/")[0] == PACKAGE]


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_declares_exactly_the_code_it_loads(name):
    stage = _stages()[name]
    module = stage_module(stage["cmd"], REPO)
    loaded = module_files(module, REPO)
    declared = _code_deps(stage)
    covered: set[Path] = set()
    unused = []
    for dep in declared:
        path = REPO / dep
        # a folder dep must be loaded whole, but for its package's __main__.py (imports.covers)
        files = set(covers(path)) if path.is_dir() else {path}
        if not files <= loaded:
            unused.append(f"{dep} (loads none of {sorted(str(f.relative_to(REPO)) for f in files - loaded)[:3]})")
        covered |= set(path.rglob("*.py")) if path.is_dir() else files
    missing = sorted(str(p.relative_to(REPO)) for p in loaded - covered)
    expected = minimal_cover(loaded, REPO)
    hint = f"its code deps should be {expected}: run `python -m repro.utils.imports --sync dvc.yaml`"
    assert not missing, f"stage {name!r} loads files dvc.yaml does not declare: {missing}; {hint}"
    assert not unused, f"stage {name!r} declares code it does not load: {unused}; {hint}"


def test_finder_sees_lazy_and_registry_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from repro.sub import b\n")
    (pkg / "sub" / "b.py").write_text("PROVIDERS = ('repro.c',)\n")
    (pkg / "c.py").write_text("import os\n")
    (pkg / "unused.py").write_text("")
    files = {p.relative_to(tmp_path).as_posix() for p in module_files("repro.a", tmp_path)}
    assert files == {"repro/__init__.py", "repro/a.py", "repro/sub/__init__.py",
                     "repro/sub/b.py", "repro/c.py"}
    assert minimal_cover(module_files("repro.a", tmp_path), tmp_path) == [
        "repro/__init__.py", "repro/a.py", "repro/c.py", "repro/sub"]


def test_a_package_whose_modules_a_stage_all_loads_is_one_folder_dep_main_aside(tmp_path):
    """repro.models' variants are registry providers, all loaded: one folder dep, so a new
    variant module needs no dvc.yaml edit; its __main__.py (the listing CLI) rides along."""
    pkg = tmp_path / PACKAGE / "zoo"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py", "__main__.py"):
        (pkg / name).write_text("")
    loaded = {pkg / "__init__.py", pkg / "a.py", pkg / "b.py"}
    assert minimal_cover(loaded, tmp_path) == ["repro/zoo"]
    assert minimal_cover(loaded - {pkg / "b.py"}, tmp_path) == ["repro/zoo/__init__.py", "repro/zoo/a.py"]


@pytest.mark.parametrize("entry", ["repro.probe", "repro.protocols.runner", "repro.tables"])
def test_library_entry_points_do_not_load_the_pipeline_layer(entry):
    """The probe, the table runner and the table units run protocols outside the pipeline:
    nothing they load is under repro/stages (command-line glue for dvc.yaml); the run context
    they share is repro/context.py."""
    stages = REPO / PACKAGE / "stages"
    loaded = module_files(entry, REPO)
    assert loaded and not [p for p in loaded if stages in p.parents]
