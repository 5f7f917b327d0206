"""The table runner: one runner for every table (its unit, repro.protocols.unit, says how).

For each row of the section's `models` (or the sources it is given: `python -m repro.probe`)
the runner has the unit's scorer compute a record (a linear probe of the representation's
features, repro.protocols.linear; a nearest-neighbour classifier fitted on a generator's
samples, repro.protocols.generated) and turn each row's records into cells, each with its
protocol_diff against the paper's protocol; a row without input is a not-run cell with its
reason, never a number from another source. Finished rows survive a kill
(repro.protocols.rows). The unit's harness rows (rows that are not sources: Table 2's KNN and
supervised CNN, Table 3's real data) and further outputs (Table 3's Fig. 9 collage) follow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.protocols.probing import Source, not_run_cells, run_rows, sources
from repro.protocols.rows import FinishedRows, fingerprint, stage_key
from repro.protocols.unit import TableData, TableUnit
from repro.published.protocol import comparable, diff_lines
from repro.context import Stage
from repro.registry import EVALUATORS


@dataclass
class Run:
    """What one run of a table shares with its scorer, its cells and its harness rows."""
    unit: TableUnit
    stage: Stage
    cfg: Any
    data: TableData
    effective: dict  # the run's value of every protocol field its rows share
    base: dict  # what every cell's `protocol` says
    deviations: list[str]
    prefix: str
    done: FinishedRows
    input_size: int

    @property
    def paper_rows(self) -> bool:  # rows of the pipeline's own table are compared, a probe's not
        return self.prefix == self.unit.name

    def judge(self, kind: str, published: bool, column: str, moved: list[dict] = (),
              **facts: Any) -> dict:
        """A cell's protocol diff against the run's protocol (plus per-row facts), whether it
        is comparable, and the deviation lines that name the diff."""
        diff = self.unit.protocol.diff(kind, column, {**self.effective, **facts}) + list(moved)
        return {"comparable": comparable(published and self.paper_rows, diff),
                "protocol_diff": diff, "lines": diff_lines(diff)}


def run_table(unit: TableUnit, stage: Stage, checkpoints: Path | None, metrics_path: Path,
              provenance_dir: Path, srcs: list[Source] | None = None,
              cell_prefix: str | None = None, input_shape: tuple[int, int] | None = None,
              harness_rows: bool = True, outputs: dict[str, Path] | None = None) -> None:
    """`srcs`: the sources to score (default: the section's `models`, from `checkpoints`);
    `cell_prefix` names the cells (repro.probe writes its own rows); `input_shape`: (size,
    channels) the images are fitted to (default: the unit's); `harness_rows`: also the unit's
    rows that are not sources; `outputs`: the unit's further outputs to write, name -> path."""
    cfg = unit.shrunk(stage.section) if stage.dry_run else stage.section
    evaluator = EVALUATORS.get(unit.evaluator(cfg))  # an unknown name: the valid ones, before any work
    size, channels = input_shape or unit.input_shape(cfg)
    data = unit.load(stage, cfg, size, channels)
    effective = unit.protocol.run_values(cfg, {
        "real_data": data.real, "dry_run": stage.dry_run,
        "preprocessing": list(stage.data_deviations), **data.facts})
    base = {**unit.cell_protocol(stage, cfg, data), "evaluator": evaluator.label}
    deviations = stage.deviations()
    if not (data.real and not stage.dry_run):
        deviations.append(f"not real data: {cfg.dataset} ({data.source})")
    deviations += unit.notes(cfg, data)
    done = FinishedRows(metrics_path, stage_key(stage, cfg, fingerprint(*(
        t for name in data.images for t in (data.images[name], torch.from_numpy(
            np.asarray(data.labels[name])))))), unit.name)
    run = Run(unit, stage, cfg, data, effective, base, deviations, cell_prefix or unit.name, done,
              size)
    if srcs is None:
        srcs = sources(checkpoints, cfg.models, cfg.variants, unit.name)
    by_row, missing, timings = run_rows(stage, srcs, done,
                                        lambda src, cache: unit.scorer.compute(run, src, cache))
    metrics: dict[str, dict] = {}
    for row, recs in by_row.items():
        metrics.update(unit.scorer.cells(run, row, recs))
    # reported as not run, with why, never silently dropped
    metrics.update(not_run_cells(unit.protocol, missing, cfg.models, base, run.prefix, {
        c.name: "units" if c.units else "%" for c in unit.columns}))
    if harness_rows and unit.harness_rows is not None:
        t0 = time.perf_counter()
        metrics.update(unit.harness_rows(run))
        timings["harness_rows"] = round(time.perf_counter() - t0, 2)
    for name, path in (outputs or {}).items():
        unit.outputs[name](run, by_row, path)
    stage.write_metrics(metrics_path, metrics)
    done.finish()
    stage.write_provenance(provenance_dir, seconds_per_row=timings, reused_rows=done.reused,
                           missing_rows=missing,
                           seeds=sorted({s for c in metrics.values() for s in c["seeds"]}))
