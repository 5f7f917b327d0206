"""Typed configs built from `params.yaml` and the selected profile.

`params.yaml` holds the few keys every stage shares (`profile`, `dry_run`, `device`, `data`,
`paths`). The profile `experiments/<profile>.yaml` holds one section per stage; a stage reads
only its own section (and `dvc.yaml` declares exactly that section). Each section is validated
by a pydantic model that lives next to the code that uses it, so an unknown key, a wrong type
or a zero/negative size fails with one message naming the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from repro.errors import ReproError

PARAMS_FILE = Path("params.yaml")
PROFILES_DIR = Path("experiments")


def _from_yaml_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# A fixed-length pair written as a YAML list ([lo, hi]); strict mode alone would refuse lists
# for tuples, but each element is still checked strictly.
FloatPair = Annotated[tuple[float, float], BeforeValidator(_from_yaml_list)]


class Section(BaseModel):
    """Base of every stage section: unknown keys are errors, values are frozen.

    Strict: a number written as a string (`lr: "0.0002"`) or a bool where a number belongs
    (`epochs: true`) is an error naming the key, not silently converted; an int is still a
    valid float.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Deviations from the paper's protocol that this section makes on purpose. They travel
    # into checkpoints, metrics and the report, so none is hidden.
    deviations: list[str] = Field(default_factory=list)


class DataParams(Section):
    root: str = "data"
    download: bool = True
    # Extra read-only folders searched for dataset files before `root` (e.g. a shared copy of
    # the MNIST test split). Missing folders are skipped.
    search: list[str] = Field(default_factory=list)


class Params(Section):
    """The shared keys of params.yaml."""

    profile: str
    dry_run: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataParams = Field(default_factory=DataParams)
    paths: dict[str, str] = Field(default_factory=dict)


S = TypeVar("S", bound=BaseModel)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReproError(f"{path} not found; run from the repository root (where dvc.yaml is)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ReproError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ReproError(f"{path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _got(error: dict[str, Any]) -> str:
    """For a wrong type, what was written (a quoted number is a string to strict mode)."""
    if not error["type"].endswith("_type") or isinstance(error.get("input"), (dict, list)):
        return ""
    value = error["input"]
    return f" (got {value!r}, a {type(value).__name__})"


def validate(model: type[S], data: Any, where: str) -> S:
    """Build a typed config, turning pydantic's report into one readable ReproError."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}{_got(e)}"
            for e in err.errors()
        )
        raise ReproError(f"invalid config: {problems}") from None


def available_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in profiles_dir.glob("*.yaml"))


def load_params(path: Path = PARAMS_FILE) -> Params:
    params = validate(Params, _read_yaml(path), path.name)
    profiles_dir = path.parent / PROFILES_DIR
    if params.profile not in available_profiles(profiles_dir):
        raise ReproError(
            f"unknown profile {params.profile!r}; valid names: "
            f"{', '.join(available_profiles(profiles_dir))} (set `profile` in {path})"
        )
    return params


def profile_path(params: Params, params_path: Path = PARAMS_FILE) -> Path:
    return params_path.parent / PROFILES_DIR / f"{params.profile}.yaml"


def load_profile(params: Params, params_path: Path = PARAMS_FILE) -> dict[str, Any]:
    return _read_yaml(profile_path(params, params_path))


def load_section(
    model: type[S], section: str, params: Params | None = None, params_path: Path = PARAMS_FILE
) -> S:
    """The typed config of one stage: `section` may be dotted (`train.mnist_cond`)."""
    params = params or load_params(params_path)
    node: Any = load_profile(params, params_path)
    for part in section.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ReproError(
                f"profile {params.profile!r} has no section {section!r} "
                f"(in {profile_path(params, params_path)})"
            )
        node = node[part]
    return validate(model, node, f"{params.profile}.{section}")


def config_hash(*configs: BaseModel | dict) -> str:
    """Short stable hash of configs, for provenance."""
    blob = json.dumps(
        [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in configs],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
