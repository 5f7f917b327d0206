"""Where the probe finds the harness's profiles and dataset folders, from any working directory:
both are located from the installed package (`repro.__file__`), never from the current folder,
so `python -m repro.probe --profile demo` works wherever it is run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import repro
from repro.config import REPO_PROFILES, available_profiles, find_section, load_profile_by_name
from repro.errors import ReproError

# The checkout (or install) holding the `repro` package: params.yaml lives there.
ROOT = Path(repro.__file__).resolve().parents[1]


def profile_names() -> list[str]:
    return available_profiles(REPO_PROFILES)


def profile_section(profile: str, section: str) -> dict[str, Any]:
    """`section` of profile `profile`, resolved through its `extends` chain (empty when the
    profile has none)."""
    if profile not in profile_names():
        raise ReproError(f"--profile {profile}: no such profile; valid names: "
                         f"{', '.join(profile_names()) or f'(none in {REPO_PROFILES})'}")
    return dict(find_section(load_profile_by_name(profile), section) or {})


def default_search() -> list[str]:
    """The repository's read-only dataset folders (params.yaml's `data.search`), resolved from
    the repository rather than the current folder; the ones that exist."""
    path = ROOT / "params.yaml"
    if not path.is_file():
        return []
    folders = ((yaml.safe_load(path.read_text()) or {}).get("data") or {}).get("search") or []
    return [str((ROOT / f).resolve()) for f in folders if (ROOT / f).is_dir()]
