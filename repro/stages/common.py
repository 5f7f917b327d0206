"""What every pipeline stage's command line shares.

A stage is `python -m repro.stages.<name> --<path name> PATH ...` (e.g. `--checkpoints DIR
--metrics FILE --provenance DIR`): paths arrive as arguments from dvc.yaml (which takes them
from `paths:` in params.yaml, their one home), and the stage reads only `params.yaml`'s shared
keys plus its own profile section, whose name the stage fixes (there is no `--section` flag).
The run's context (params, section, device, provenance, cells) is repro.context.Stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def path_args(doc: str, names: list[str], argv: list[str] | None = None) -> argparse.Namespace:
    """A stage's command line: one required path option per name (`--metrics PATH`, ...)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in names:
        ap.add_argument(f"--{name}", required=True, type=Path)
    return ap.parse_args(argv)


def stage_main(run: Callable[..., None], doc: str, names: list[str],
               argv: list[str] | None = None) -> None:
    """`main` of a stage whose arguments are all paths: parse them, call `run` in that order."""
    args = path_args(doc, names, argv)
    run(*(getattr(args, name) for name in names))
