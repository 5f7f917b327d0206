"""Finished rows of a long table stage, kept across a kill.

A table stage that takes long (Table 2 on real data, with its supervised search) writes each finished row,
atomically, to `<metrics>.partial.json` beside its metrics file (`table2_svhn.json` ->
`table2_svhn.partial.json`). That file is not a declared output, so `dvc repro` does not
delete it before rerunning the stage. A rerun whose key (the stage's section as run, the
shared params, the device, the package's source code, library versions and a fingerprint of
the input data) matches skips the rows already finished and reuses what they recorded; each
row also records a fingerprint of its own inputs (its checkpoint files), and is rerun when
those changed. Any other key discards the file. The stage writes its metrics file once at the
end and then removes the partial file, so a killed run never leaves a half-written metrics
file and loses at most the row in progress.

What a row records must be JSON (floats survive a JSON round trip exactly); a record is used
after that round trip on a straight run too, so straight and resumed runs write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import torch

from repro.config import config_hash
from repro.utils.io import PARTIAL_SUFFIX, read_json, write_json
from repro.utils.provenance import library_versions

FORMAT = 1


def partial_path(metrics_path: str | Path) -> Path:
    metrics_path = Path(metrics_path)
    return metrics_path.with_name(metrics_path.stem + PARTIAL_SUFFIX)


@lru_cache(maxsize=1)
def code_marker() -> str:
    """Hash of the package's Python sources: rows made by other code are never reused."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def fingerprint(*items: torch.Tensor | str | Path | None) -> str:
    """Short hash of tensors' bytes (and shapes), files' contents, or strings."""
    h = hashlib.sha256()
    for item in items:
        if item is None:
            h.update(b"none")
        elif isinstance(item, torch.Tensor):
            t = item.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(item, Path):
            with open(item, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(str(item).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def stage_key(stage, cfg, inputs: str) -> str:
    """What must match for finished rows to be reused: `cfg` is the section as run (dry-run
    shrinking applied), `inputs` a fingerprint of the data the stage loaded, and the stage's
    `identity` where it has one: what else decides its rows (a probe's factory, layers, pixel
    range, z settings), which neither the section nor a row's weights file records."""
    return config_hash(stage.params, cfg, {"stage": stage.name, "device": stage.device.type,
                                           "code": code_marker(), "libraries": library_versions(),
                                           "inputs": inputs, "format": FORMAT,
                                           "identity": getattr(stage, "identity", None)})


class FinishedRows:
    """Rows finished by this or an earlier run with the same key (see the module docstring)."""

    def __init__(self, metrics_path: str | Path, key: str, label: str):
        self.path, self.key, self.label = partial_path(metrics_path), key, label
        self.rows: dict[str, dict[str, Any]] = {}
        self.reused: list[str] = []
        if not self.path.is_file():
            return
        try:
            saved = read_json(self.path)
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict) and saved.get("key") == key:
            self.rows = saved.get("rows") or {}
            print(f"{label}: resuming from {self.path}: {len(self.rows)} finished row(s) with the "
                  f"same config and inputs ({', '.join(self.rows) or 'none'}); running the rest")
        else:
            print(f"{label}: discarding {self.path} (another config, code or input data)")
            self.path.unlink(missing_ok=True)

    def run(self, row: str, inputs: str, compute: Callable[[], Any]) -> Any:
        """The record of `row`: reused when finished with the same `inputs`, else computed by
        `compute()` and saved at once."""
        done = self.rows.get(row)
        if done is not None and done.get("inputs") == inputs:
            self.reused.append(row)
            return done["record"]
        record = json.loads(json.dumps(compute(), default=str))
        self.rows[row] = {"inputs": inputs, "record": record}
        write_json(self.path, {"key": self.key, "rows": self.rows})
        return record

    def finish(self) -> None:
        """Call after the metrics file is written: the partial file is no longer needed."""
        self.path.unlink(missing_ok=True)
        if self.reused:
            print(f"{self.label}: reused {len(self.reused)} row(s) finished by an earlier run: "
                  f"{', '.join(self.reused)}")

