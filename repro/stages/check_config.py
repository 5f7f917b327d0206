"""Stage `check_config`: the whole configuration, checked before any other stage runs.

    python -m repro.stages.check_config --out results/config_check.json

Why a stage of its own: DVC removes a stage's outputs before it runs the stage's command, and
resolves the stage's `experiments/${profile}.yaml` params only in between. An unknown profile,
a missing section or a mistyped key used to cost the outputs (those with `cache: false` for
good) and show DVC's "Parameters ... are missing" instead of the harness's message. Every
stage depends on this stage's output, so `dvc repro` and `dvc exp run` run it first and stop
at its error. It tracks the `experiments/` folder as a file dependency, not as params: DVC
never fails to resolve that, so the check itself always gets to run; its one output is
`persist` in dvc.yaml, so a failed check deletes nothing either. (`dvc repro -s STAGE` skips
upstream stages by request, this one included: there DVC's own message shows, and the stage's
uncached output files survive because they are `persist` too.)

The check is what each stage's `Stage.open` does, for every stage of dvc.yaml: params.yaml's
shared keys, the profile, and each stage's section against its typed config. Sections no
stage reads are refused too (a mistyped section name would otherwise be silently unused).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from repro.config import PARAMS_FILE, PROFILES_DIR, load_params, load_profile, load_section
from repro.errors import ReproError, cli_errors
from repro.stages.common import path_args
from repro.utils.io import write_json

DVC_FILE = Path("dvc.yaml")


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


def stage_sections(dvc_file: Path = DVC_FILE) -> list[str]:
    """The profile sections the stages of `dvc_file` read (their `experiments/...` params),
    `foreach` items expanded: dvc.yaml is the one place that says which stage reads what."""
    sections = []
    for stage in yaml.safe_load(dvc_file.read_text())["stages"].values():
        items = stage.get("foreach", [None])
        body = stage.get("do", stage)
        for entry in body.get("params", []):
            if not isinstance(entry, dict):
                continue
            for file, keys in entry.items():
                if file.startswith(f"{PROFILES_DIR}/"):
                    for item in items:
                        sections += [k.replace("${item}", str(item)) for k in keys]
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
    """Every stage's config, validated; the first problem is a ReproError."""
    params = load_params(params_path)
    sections = stage_sections(dvc_file)
    table = models()
    for section in sections:
        model = table.get(section.split(".")[0])
        if model is None:  # a stage added to dvc.yaml without its config type here
            raise ReproError(f"dvc.yaml has a stage reading section {section!r}, which "
                             "repro.stages.check_config.models() does not know; add its config type")
        load_section(model, section, params, params_path)
    profile = load_profile(params, params_path)
    extra = [name for name in off_pipeline_models() if name in profile]
    for name in extra:
        load_section(off_pipeline_models()[name], name, params, params_path)
    unread = _unread(profile, sections + extra)
    if unread:
        raise ReproError(
            f"profile {params.profile!r} has sections no stage reads: {', '.join(unread)} "
            f"(a misspelt name?); the stages read: {', '.join(sections)}")
    return {"profile": params.profile, "sections": sections + extra}


@cli_errors
def main(argv: list[str] | None = None) -> None:
    out = path_args(__doc__, ["out"], argv).out
    write_json(out, check())


if __name__ == "__main__":
    main()
