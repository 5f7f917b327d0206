"""The drift gate's seed runs kept on disk: `smoke_gate --update --runs DIR`.

A baseline update runs the smoke pipeline (or one stage) once per seed, which takes a long
while, and then may refuse to write (cells above their sharpness cap). Without a store those
runs are lost with the refusal. With `--runs DIR` each seed's cell values are written to DIR as
soon as that seed finishes, and a later update of the same tree reads them back instead of
running again: an interrupted update resumes, and a refused one can be rerun with `--force`
at no cost.

A stored run is read back only when it was measured from the same tree (`tree_id`: the commit
plus a hash of the uncommitted changes and untracked files) and for the same kind of update
(the whole pipeline, or one stage); otherwise it is measured again and overwritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from repro.errors import ReproError
from repro.utils.io import write_json
from repro.utils.provenance import OUTPUTS, git_output

Values = tuple[dict[str, Any], dict[str, str]]  # ({cell: value}, {cell: unit})


def tree_id(repo: Path) -> str | None:
    """The code a run measured: HEAD, the uncommitted diff and the untracked files' contents
    (pipeline outputs excluded, as in repro.utils.provenance); None outside a git checkout,
    where no stored run can be trusted."""
    head = git_output("rev-parse", "HEAD", cwd=repo)
    if head is None:
        return None
    h = hashlib.sha256(head)
    h.update(git_output("diff", "HEAD", "--binary", "--", ".", *OUTPUTS, cwd=repo,
                        timeout=60) or b"")
    untracked = (git_output("ls-files", "--others", "--exclude-standard", "-z", "--", ".",
                            *OUTPUTS, cwd=repo, timeout=60) or b"").split(b"\0")
    for name in sorted(n for n in untracked if n):
        h.update(name)
        path = repo / name.decode()
        if path.is_file():
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


class SeedRuns:
    """Seed -> measured (values, units), from `folder` when the same tree and `kind` stored
    them, else from `measure` (then stored). `folder` None: measure every time, keep nothing."""

    def __init__(self, folder: Path | None, repo: Path, kind: str):
        self.folder, self.kind = folder, kind
        self.tree = tree_id(repo) if folder is not None else None
        if folder is not None:
            if folder.exists() and not folder.is_dir():
                raise ReproError(f"--runs {folder}: not a folder; name a folder to keep the "
                                 "seed runs in")
            folder.mkdir(parents=True, exist_ok=True)

    def path(self, seed: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{self.kind.replace(':', '_')}_seed{seed}.json"

    def stored(self, seed: int) -> Values | None:
        """The stored run of `seed`, if the same tree and kind measured it."""
        if self.folder is None or self.tree is None or not self.path(seed).is_file():
            return None
        try:
            doc = json.loads(self.path(seed).read_text())
        except (OSError, ValueError):
            return None
        if doc.get("tree") != self.tree or doc.get("kind") != self.kind or doc.get("seed") != seed:
            return None
        return doc["values"], doc["units"]

    def get(self, seed: int, measure: Callable[[], Values]) -> Values:
        kept = self.stored(seed)
        if kept is not None:
            print(f"  seed {seed}: read back from {self.path(seed)} (same tree {self.tree})",
                  flush=True)
            return kept
        values, units = measure()
        if self.folder is not None:
            write_json(self.path(seed), {"tree": self.tree, "kind": self.kind, "seed": seed,
                                         "values": values, "units": units})
        return values, units
