"""Stage `check_config`: the whole configuration, checked before any other stage runs, and the
selected profile resolved for DVC.

    python -m repro.stages.check_config --out results/config_check.json

Why a stage of its own: DVC removes a stage's outputs before it runs the stage's command, and
resolves the stage's params only in between. An unknown profile, a missing section or a
mistyped key used to cost the outputs (those with `cache: false` for good) and show DVC's
"Parameters ... are missing" instead of the harness's message. Every stage reads its params
from this stage's output, so `dvc repro` and `dvc exp run` run it first and stop at its error.
It tracks the `experiments/` folder as a file dependency, not as params: DVC never fails to
resolve that, so the check itself always gets to run; its one output is `persist` in
dvc.yaml, so a failed check deletes nothing either. (`dvc repro -s STAGE` skips upstream
stages by request, this one included. DVC then compares the stage's params with the last
check's output, while the stage's own `Stage.open` resolves `experiments/` afresh and stops at
a bad config: after a profile edit, run the check too (`dvc repro -s check_config STAGE`), or
DVC may call the stage unchanged; its uncached output files survive, being `persist`.)

The output is the profile resolved (its `extends` chain merged, repro.config): one key per
section, so each stage declares exactly its own resolved section as params and DVC reruns a
stage when, and only when, that section's resolved settings change, whichever file of the
chain changed them. A `train.<name>` section the profile leaves out (a `foreach` item of
dvc.yaml) is written as NOT_IN_PROFILE: its stage records that and trains nothing.

The check is what each stage's `Stage.open` does, for every stage of dvc.yaml: params.yaml's
shared keys, the profile, and each stage's section against its typed config. Sections no
stage reads are refused too (a mistyped section name would otherwise be silently unused).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from repro.config import (PARAMS_FILE, PROFILES_DIR, find_section, load_params, load_profile,
                          load_section, profile_chain)
from repro.errors import ReproError, cli_errors
from repro.stages.common import path_args
from repro.utils.io import write_json

DVC_FILE = Path("dvc.yaml")
# dvc.yaml's name for this stage's output, the params file of every other stage
PARAMS_OUT = "${paths.config_check}"
NOT_IN_PROFILE = "not in this profile"


def models() -> dict[str, type[BaseModel]]:
    """First part of a section name -> the typed config of the stage that reads it."""
    from repro.figures.config import FiguresConfig
    from repro.stages.port_svhn import PortConfig
    from repro.stages.train import TrainStageConfig
    from repro.tables import units
    return {"train": TrainStageConfig, "port_svhn": PortConfig, "figures": FiguresConfig,
            **{name: unit.config for name, unit in units().items()}}


def off_pipeline_models() -> dict[str, type[BaseModel]]:
    """Sections read by commands outside dvc.yaml (optional in a profile, checked when there)."""
    from repro.stages.table3_curve import CurveConfig
    return {"table3_curve": CurveConfig}


def _foreach_items(items: Any, vars_files: list[str], root: Path) -> list[str]:
    """A `foreach` value's item names: a list, a mapping's keys, or `${var}` taken from the
    `vars` files (`file` or `file:key`) as DVC takes it."""
    if isinstance(items, str) and items.startswith("${") and items.endswith("}"):
        var = items[2:-1]
        for entry in vars_files:
            file, _, keys = entry.partition(":")
            data = yaml.safe_load((root / file).read_text()) or {}
            if var in data and (not keys or var in keys.split(",")):
                items = data[var]
                break
        else:
            raise ReproError(f"dvc.yaml: foreach {items} is in none of its vars files {vars_files}")
    return list(items)


def stage_sections(dvc_file: Path = DVC_FILE) -> dict[str, bool]:
    """The profile sections the stages of `dvc_file` read (their params from this stage's
    output), `foreach` items expanded -> whether the profile may leave the section out (a
    `foreach` item's may: its stage records "not in this profile"). dvc.yaml is the one place
    that says which stage reads what."""
    dvc = yaml.safe_load(dvc_file.read_text())
    sections: dict[str, bool] = {}
    for stage in dvc["stages"].values():
        items = (_foreach_items(stage["foreach"], dvc.get("vars", []), dvc_file.parent)
                 if "foreach" in stage else [None])
        body = stage.get("do", stage)
        for entry in body.get("params", []):
            if isinstance(entry, dict) and PARAMS_OUT in entry:
                for item in items:
                    for key in entry[PARAMS_OUT]:
                        name = key.replace("${key}", str(item)).replace("${item}", str(item))
                        sections[name] = item is not None
    return sections


def _unread(profile: dict[str, Any], sections: list[str]) -> list[str]:
    """Sections of `profile` no stage reads (one level below a dotted section's parent)."""
    parents = {s.split(".")[0] for s in sections}
    unread = [k for k in profile if k not in parents]
    for parent in parents:
        node = profile.get(parent)
        children = {s.split(".", 1)[1] for s in sections if s.startswith(f"{parent}.")}
        if children and isinstance(node, dict):
            unread += [f"{parent}.{k}" for k in node if k not in children]
    return sorted(unread)


def check(params_path: Path = PARAMS_FILE, dvc_file: Path = DVC_FILE) -> dict[str, Any]:
    """Every stage's config, validated -> the resolved profile ({section: settings}, dotted
    sections nested; a section the profile may leave out and does is NOT_IN_PROFILE), with its
    name under `profile` and its chain, base first, under `chain`. The first problem is a
    ReproError."""
    params = load_params(params_path)
    sections = stage_sections(dvc_file)
    table = models()
    profile = load_profile(params, params_path)
    out: dict[str, Any] = {}
    for section, optional in sections.items():
        model = table.get(section.split(".")[0])
        if model is None:  # a stage added to dvc.yaml without its config type here
            raise ReproError(f"dvc.yaml has a stage reading section {section!r}, which "
                             "repro.stages.check_config.models() does not know; add its config type")
        node = find_section(profile, section)
        if node is None and optional:
            node = NOT_IN_PROFILE
        else:
            load_section(model, section, params, params_path)
        *parents, last = section.split(".")
        nested = out
        for part in parents:
            nested = nested.setdefault(part, {})
        nested[last] = node
    extra = [name for name in off_pipeline_models() if name in profile]
    for name in extra:
        load_section(off_pipeline_models()[name], name, params, params_path)
        out[name] = profile[name]
    unread = _unread(profile, [*sections, *extra])
    if unread:
        raise ReproError(
            f"profile {params.profile!r} has sections no stage reads: {', '.join(unread)} "
            f"(a misspelt name?); the stages read: {', '.join(sections)}")
    chain = profile_chain(params.profile, params_path.parent / PROFILES_DIR)
    return {"profile": params.profile, "chain": chain, **out}


@cli_errors
def main(argv: list[str] | None = None) -> None:
    out = path_args(__doc__, ["out"], argv).out
    write_json(out, check())


if __name__ == "__main__":
    main()
