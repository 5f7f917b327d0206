"""Typed configs built from `params.yaml` and the selected profile.

`params.yaml` holds the few keys every stage shares (`profile`, `dry_run`, `device`, `data`,
`paths`). The profile `experiments/<profile>.yaml` holds one section per stage; a stage reads
only its own section (and `dvc.yaml` declares exactly that section). Each section is validated
by a pydantic model that lives next to the code that uses it, so an unknown key, a wrong type
or a zero/negative size fails with one message naming the key.

Profiles are overlays: `extends: <parent>` starts a profile from its parent's sections, merged
key by key (mappings merge, anything else, lists included, replaces), and `remove: [dotted
names]` drops what the parent sets (a removed key takes its typed default; a removed
`train.<name>` section is not in this profile, and its stage records so). `paper` extends
nothing: it is the published protocol, on top of each config's defaults, so every profile
starts from the protocol and holds only what differs.
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
# The repository's profiles, found from the package (so from any working directory)
REPO_PROFILES = Path(__file__).resolve().parents[1] / PROFILES_DIR
EXTENDS, REMOVE = "extends", "remove"


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
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))


def merge(base: Any, over: Any) -> Any:
    """`over` on top of `base`: mappings merge key by key, anything else (lists too) replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base[k], v) if k in base else v for k, v in over.items()}}
    return over


def _remove(profile: dict[str, Any], dotted: Any, where: str) -> None:
    node, parts = profile, str(dotted).split(".")
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(dotted, str) or not isinstance(node, dict) or parts[-1] not in node:
        raise ReproError(f"{where}: {REMOVE}: {dotted!r} is not set by the profile it extends "
                         "(a misspelt name?)")
    del node[parts[-1]]


def profile_chain(name: str, profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """`name` and what it extends, base first (e.g. ['paper', 'cpu', 'demo'])."""
    chain = [name]
    while True:
        path = Path(profiles_dir) / f"{chain[0]}.yaml"
        if not path.is_file():
            raise ReproError(f"profile {chain[0]!r} not found ({path}); valid names: "
                             f"{', '.join(available_profiles(profiles_dir))}")
        parent = _read_yaml(path).get(EXTENDS)
        if parent is None:
            return chain
        if not isinstance(parent, str) or parent in chain:
            raise ReproError(f"{path}: {EXTENDS}: {parent!r} must name another profile, "
                             f"without a cycle (chain so far: {' <- '.join(chain)})")
        chain.insert(0, parent)


def load_profile_by_name(name: str, profiles_dir: Path | None = None) -> dict[str, Any]:
    """The profile `name` resolved: its `extends` chain merged and its `remove` applied, as
    {section: settings}. `profiles_dir` defaults to the repository's experiments/ folder, found
    from the package, so this works from any working directory."""
    profiles_dir = REPO_PROFILES if profiles_dir is None else Path(profiles_dir)
    resolved: dict[str, Any] = {}
    for link in profile_chain(name, profiles_dir):
        layer = dict(_read_yaml(profiles_dir / f"{link}.yaml"))
        layer.pop(EXTENDS, None)
        removed = layer.pop(REMOVE, [])
        if not isinstance(removed, list):
            raise ReproError(f"{link}.{REMOVE}: must be a list of dotted section or key names")
        for dotted in removed:
            _remove(resolved, dotted, link)
        resolved = merge(resolved, layer)
    return resolved


def find_section(profile: dict[str, Any], section: str) -> Any:
    """The settings of `section` (dotted: `train.mnist_cond`) in a resolved profile; None when
    the profile leaves it out."""
    node: Any = profile
    for part in section.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


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
    """The selected profile, resolved (beside `params_path`: a scratch copy reads its own)."""
    return load_profile_by_name(params.profile, params_path.parent / PROFILES_DIR)


def in_profile(section: str, params: Params | None = None, params_path: Path = PARAMS_FILE) -> bool:
    """Whether the selected profile holds `section` (a `train.<name>` it leaves out does not)."""
    params = params or load_params(params_path)
    return find_section(load_profile(params, params_path), section) is not None


def load_section(
    model: type[S], section: str, params: Params | None = None, params_path: Path = PARAMS_FILE
) -> S:
    """The typed config of one stage: `section` may be dotted (`train.mnist_cond`)."""
    params = params or load_params(params_path)
    node = find_section(load_profile(params, params_path), section)
    chain = profile_chain(params.profile, params_path.parent / PROFILES_DIR)
    if node is None:
        raise ReproError(
            f"profile {params.profile!r} has no section {section!r} "
            f"(in {profile_path(params, params_path)} or what it extends: {' <- '.join(chain)})"
        )
    try:
        return validate(model, node, f"{params.profile}.{section}")
    except ReproError as err:
        if len(chain) == 1:
            raise
        # the key may be set by any file of the chain
        raise ReproError(f"{err} (profile chain: {' <- '.join(chain)})") from None


def config_hash(*configs: BaseModel | dict) -> str:
    """Short stable hash of configs, for provenance."""
    blob = json.dumps(
        [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in configs],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
