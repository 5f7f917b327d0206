"""Where the probe finds the harness's profiles and dataset folders, from any working directory:
both are located from the installed package (`repro.__file__`), never from the current folder,
so `python -m repro.probe --profile demo` works wherever it is run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import repro
from repro.errors import ReproError

# The checkout (or install) holding the `repro` package: profiles and params.yaml live there.
ROOT = Path(repro.__file__).resolve().parents[1]


def profiles_dir() -> Path:
    return ROOT / "experiments"


def profile_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def profile_section(profile: str, section: str) -> dict[str, Any]:
    """`section` of profile `profile` as a mapping (empty when the profile has none)."""
    path = profiles_dir() / f"{profile}.yaml"
    if not path.is_file():
        raise ReproError(f"--profile {profile}: no such profile; valid names: "
                         f"{', '.join(profile_names()) or f'(none in {profiles_dir()})'}")
    data = yaml.safe_load(path.read_text()) or {}
    return dict(data.get(section) or {})


def default_search() -> list[str]:
    """The repository's read-only dataset folders (params.yaml's `data.search`), resolved from
    the repository rather than the current folder; the ones that exist."""
    path = ROOT / "params.yaml"
    if not path.is_file():
        return []
    folders = ((yaml.safe_load(path.read_text()) or {}).get("data") or {}).get("search") or []
    return [str((ROOT / f).resolve()) for f in folders if (ROOT / f).is_dir()]
