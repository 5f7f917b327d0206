"""A run's context, below the pipeline layer: params, its typed section, device, provenance
(`Stage`), and the metrics cells every table writes (`metric_cell`, `not_run_cell`).

The pipeline's stages (repro.stages) and the library entry points that run the same protocols
outside the pipeline (repro.protocols, repro.tables, repro.probe) share it; those never
import repro.stages, whose modules are command-line glue for dvc.yaml.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import BaseModel

from repro.config import Params, config_hash, load_params, load_section, PARAMS_FILE
from repro.data.base import ImageSet
from repro.data.fit import Fit, fit_to
from repro.utils.device import describe, resolve_device
from repro.utils.io import write_json, write_metrics
from repro.utils.platform import fingerprint
from repro.utils.provenance import git_revision, library_versions


S = TypeVar("S", bound=BaseModel)


@dataclass
class Stage:
    name: str  # stage name, e.g. "train_mnist_cond"; names the provenance file
    section_name: str
    section: Any
    params: Params
    device: torch.device
    started: float = field(default_factory=time.perf_counter)
    # What fitting data to models did (resize, pad, channels): a deviation of every cell.
    data_deviations: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, name: str, model: type[S], section: str,
             params_path: Path = PARAMS_FILE) -> "Stage":
        params = load_params(params_path)
        cfg = load_section(model, section, params, params_path)
        return cls(name, section, cfg, params, resolve_device(params.device))

    @property
    def profile(self) -> str:
        return self.params.profile

    @property
    def dry_run(self) -> bool:
        return self.params.dry_run

    def protocol(self, **facts: Any) -> dict[str, Any]:
        """Protocol facts every metric cell carries."""
        return {"profile": self.profile, "dry_run": self.dry_run, **facts}

    @property
    def fit_key(self) -> str:
        """What the user sets to choose the fit, as the fit's error messages name it."""
        return f"{self.section_name}.fit"

    def fit(self, data: ImageSet, image_size: int, channels: int, how: Fit) -> ImageSet:
        """`data` fitted to a model's input (`fit_key` chose `how`); the deviations that
        took join `deviations()`, so every cell and the provenance name them."""
        data, devs = fit_to(data, image_size, channels, how, key=self.fit_key)
        self.data_deviations += [d for d in devs if d not in self.data_deviations]
        return data

    def deviations(self, *extra: str) -> list[str]:
        out = list(self.section.deviations) + self.data_deviations + list(extra)
        if self.dry_run:
            out.append("dry run: a few steps on generated stand-in data of the real shapes")
        return out

    def write_metrics(self, path: str | Path, metrics: dict[str, dict[str, Any]]) -> None:
        """The metrics file pair (repro.utils.io.write_metrics), signed with what the report
        checks against this stage's provenance: the same stage, revision and params hash."""
        write_metrics(path, metrics, written_by={
            "stage": self.name, "git": git_revision(),
            "params_hash": config_hash(self.params, self.section)})

    def write_provenance(self, out_dir: str | Path, **extra: Any) -> None:
        write_json(Path(out_dir) / f"{self.name}.json", {
            "stage": self.name,
            "section": self.section_name,
            "profile": self.profile,
            "dry_run": self.dry_run,
            "device": self.device.type,
            "device_name": describe(self.device),
            # the CPU and kernel stack that fixed the last bits of every float result here
            "platform": fingerprint(),
            "params_hash": config_hash(self.params, self.section),
            "config": self.section.model_dump(mode="json"),
            "git": git_revision(),
            "libraries": library_versions(),
            "wall_time_s": round(time.perf_counter() - self.started, 2),
            "deviations": self.deviations(),
            **extra,
        })


def metric_cell(runs: list[float], *, comparable: bool, protocol: dict[str, Any],
                deviations: list[str], compares_to: str | None, seeds: list[int] = (),
                unit: str = "%", **extra: Any) -> dict[str, Any]:
    """One cell of a metrics file (schema: docs/CONVENTIONS.md): mean and std of `runs`."""
    runs = [float(r) for r in runs]
    return {
        "value": statistics.fmean(runs),
        # statistics.stdev raises on NaN runs: the NaN is kept for write_metrics to refuse
        # with the cell id
        "std": ((statistics.stdev(runs) if all(map(math.isfinite, runs)) else math.nan)
                if len(runs) > 1 else None),
        "n_runs": len(runs),
        "runs": runs,
        "seeds": list(seeds),
        "unit": unit,
        "compares_to": compares_to,
        "comparable": comparable,
        "protocol": protocol,
        "deviations": list(deviations),
        **extra,
    }


def not_run_cell(reason: str, *, compares_to: str | None, protocol: dict[str, Any],
                 unit: str = "%") -> dict[str, Any]:
    """A cell whose input is missing or wrong: reported with the reason, never a number from a
    fallback (every table writes these the same way; the report shows them as not run)."""
    return {"value": None, "std": None, "n_runs": 0, "runs": [], "seeds": [], "unit": unit,
            "compares_to": compares_to, "comparable": False, "protocol": protocol,
            "deviations": [f"not run: {reason}"], "missing": reason}
