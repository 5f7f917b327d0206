"""The probe-table runner: one runner for every table whose rows probe frozen representations
(Tables 1 and 2 are two specs of it; `python -m repro.probe` runs a user's model through it).

A table is a `ProbeTable`: its protocol (repro.published.protocol, which names the evaluator,
a registered one: repro.eval.evaluators), its section type, its measured columns, how its data
are loaded and split, the facts every cell records, and the rows it adds that are not probes
(Table 2's KNN and supervised rows). For each row of the section's `models` (or the sources it
is given) the runner computes the representation once, chooses C per column on the selection
split (for a regularised evaluator), scores the test draws and writes one cell per column
with its protocol_diff; a row without input is a not-run cell with its reason, never a number
from another representation. Finished rows survive a kill (repro.protocols.rows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from repro.config import Section
from repro.eval.probe import choose_C, svm_draws
from repro.protocols.probing import Source, features, not_run_cells, probe_rows, sources
from repro.protocols.rows import FinishedRows, fingerprint, stage_key
from repro.published.protocol import Protocol, comparable, diff_lines
from repro.registry import EVALUATORS
from repro.stages.common import Stage, metric_cell, stage_main


@dataclass(frozen=True)
class Column:
    """One column of a probe table. `draws`: the section field with the number of test draws
    of `per_class` labels (None: one fit on the whole pool); `select_draws`: the same for
    choosing C; `error`: the cell is the error rate 100 (1 - acc), else the accuracy 100 acc;
    `units`: the cell is the representation's max # of feature units, not a score."""
    name: str
    draws: str | None = None
    select_draws: str | None = None
    error: bool = False
    units: bool = False


@dataclass
class ProbeData:
    """A table's loaded data: image sets (features are computed for each), their labels, and
    which rows of which sets C is chosen on: (pool set, rows or None: all, validation set,
    rows). Test draws are fitted on the "train" set and scored on "test"."""
    images: dict[str, torch.Tensor]
    labels: dict[str, np.ndarray]
    select: tuple[str, np.ndarray | None, str, np.ndarray | None]
    real: bool
    source: str
    facts: dict[str, Any] = field(default_factory=dict)  # sizes the spec's `facts` reads


@dataclass(frozen=True)
class ProbeTable:
    protocol: Protocol
    config: type[Section]
    columns: tuple[Column, ...]
    load: Callable[[Stage, Any, int, int], ProbeData]  # (stage, cfg, size, channels)
    # -> (the run's value of every protocol field, the facts every cell's `protocol` carries)
    facts: Callable[[Stage, Any, ProbeData], tuple[dict, dict]]
    input_shape: Callable[[Any], tuple[int, int]]  # (size, channels) the images are fitted to
    dry: Callable[[Any], Any] = lambda cfg: cfg  # the section shrunk for a dry run
    notes: Callable[[Any, ProbeData], list[str]] = lambda cfg, data: []  # on every cell
    row_notes: Callable[[Any, str], list[str]] = lambda cfg, kind: []  # per row kind
    harness_rows: Callable[["Run"], dict[str, dict]] | None = None  # rows that are not probes

    @property
    def table(self) -> str:
        return self.protocol.table


@dataclass
class Run:
    """What one run of a table shares with its cells and its harness rows."""
    spec: ProbeTable
    stage: Stage
    cfg: Any
    data: ProbeData
    effective: dict
    base: dict
    deviations: list[str]
    prefix: str
    done: FinishedRows

    @property
    def paper_rows(self) -> bool:  # rows of the pipeline's own table are compared, a probe's not
        return self.prefix == self.spec.table

    def judge(self, kind: str, published: bool, column: str, moved: list[dict] = (),
              **facts: Any) -> dict:
        """A cell's protocol diff against the run's protocol (plus per-row facts), whether it
        is comparable, and the deviation lines that name the diff."""
        diff = self.spec.protocol.diff(kind, column, {**self.effective, **facts}) + list(moved)
        return {"comparable": comparable(published and self.paper_rows, diff),
                "protocol_diff": diff, "lines": diff_lines(diff)}


def stage_entry(spec: ProbeTable, doc: str) -> Callable[[list[str] | None], None]:
    """`main` of a probe table's stage: `--checkpoints --metrics --provenance`."""
    def run(checkpoints: Path, metrics_path: Path, provenance_dir: Path) -> None:
        run_table(spec, Stage.open(spec.table, spec.config, spec.table), checkpoints,
                  metrics_path, provenance_dir)
    return lambda argv=None: stage_main(run, doc, ["checkpoints", "metrics", "provenance"], argv)


def run_table(spec: ProbeTable, stage: Stage, checkpoints: Path | None, metrics_path: Path,
              provenance_dir: Path, srcs: list[Source] | None = None,
              cell_prefix: str | None = None, input_shape: tuple[int, int] | None = None,
              harness_rows: bool = True) -> None:
    """`srcs`: the representations to probe (default: the section's `models`, from
    `checkpoints`); `cell_prefix` names the cells (repro.probe writes its own rows);
    `input_shape`: (size, channels) the images are fitted to (default: the spec's);
    `harness_rows`: also the spec's rows that are not probes."""
    cfg = spec.dry(stage.section) if stage.dry_run else stage.section
    evaluator = EVALUATORS.get(cfg.evaluator)  # an unknown name: the valid ones, before any work
    size, channels = input_shape or spec.input_shape(cfg)
    data = spec.load(stage, cfg, size, channels)
    effective, base = spec.facts(stage, cfg, data)
    base = {**base, "evaluator": evaluator.label}
    deviations = stage.deviations()
    if not (data.real and not stage.dry_run):
        deviations.append(f"not real data: {cfg.dataset} ({data.source})")
    deviations += spec.notes(cfg, data)
    done = FinishedRows(metrics_path, stage_key(stage, cfg, fingerprint(*(
        t for name in data.images for t in (data.images[name], torch.from_numpy(
            np.asarray(data.labels[name])))))), spec.table)
    run = Run(spec, stage, cfg, data, effective, base, deviations, cell_prefix or spec.table, done)
    if srcs is None:
        srcs = sources(checkpoints, cfg.models, cfg.variants, spec.table)
    by_row, missing, timings = probe_rows(stage, srcs, done, lambda src, cache: _probe(
        run, src, size, cache))
    metrics: dict[str, dict] = {}
    for row, recs in by_row.items():
        metrics.update(_row_cells(run, row, recs))
    # reported as not run, with why, never silently dropped
    metrics.update(not_run_cells(spec.protocol, missing, cfg.models, base, run.prefix, {
        c.name: "units" if c.units else "%" for c in spec.columns}))
    if harness_rows and spec.harness_rows is not None:
        t0 = time.perf_counter()
        metrics.update(spec.harness_rows(run))
        timings["harness_rows"] = round(time.perf_counter() - t0, 2)
    stage.write_metrics(metrics_path, metrics)
    done.finish()
    stage.write_provenance(provenance_dir, seconds_per_row=timings, reused_rows=done.reused,
                           missing_rows=missing,
                           seeds=sorted({s for c in metrics.values() for s in c["seeds"]}))


def _scored(spec: ProbeTable) -> list[Column]:
    return [c for c in spec.columns if not c.units]


def _probe(run: Run, src: Source, size: int, cache: Path) -> dict:
    """One representation's features, C per column and test scores (a JSON record)."""
    t0 = time.perf_counter()
    cfg, data, stage = run.cfg, run.data, run.stage
    f = features(src, data.images, cfg.features, stage.device, size, cache,
                 kmeans=getattr(cfg, "kmeans", None))
    X, y = f.sets, data.labels
    pool, pool_rows, val, val_rows = data.select
    take = (lambda a, rows: a if rows is None else a[rows])
    Xs, ys = take(X[pool], pool_rows), take(y[pool], pool_rows)
    Xv, yv = take(X[val], val_rows), take(y[val], val_rows)
    common = dict(solver=cfg.svm.solver, device=stage.device, evaluator=cfg.evaluator,
                  **cfg.svm.options())
    per_class = {c.name: cfg.per_class if c.draws else None for c in _scored(run.spec)}
    # every column's C first, then every column's test draws (the order Table 1 always had)
    sel = {c.name: choose_C(Xs, ys, Xv, yv, grid=list(cfg.svm.C_grid), per_class=per_class[
        c.name], draws=getattr(cfg, c.select_draws) if c.select_draws else 1, seed=cfg.seed,
        **common) for c in _scored(run.spec)}
    scores = {}
    for c in _scored(run.spec):
        accs = svm_draws(X["train"], y["train"], X["test"], y["test"], per_class=per_class[c.name],
                         draws=getattr(cfg, c.draws) if c.draws else 1, C=sel[c.name]["best_C"],
                         seed=cfg.seed + 1, desc=f"{src.row} {c.name}", **common)
        scores[c.name] = [100 * (1 - a) if c.error else 100 * a for a in accs]
    ckpt = f.checkpoint or {}
    f.sets = {}  # the memmaps live in the cache folder; keep only the facts
    return {"scores": scores, "C": {k: s["best_C"] for k, s in sel.items()},
            "val_acc": {k: s["val_acc"] for k, s in sel.items()}, "seed": f.seed,
            "feature_dim": f.feature_dim, "widest_layer": f.widest_layer,
            "data_source": f.data_source,
            "checkpoint_source": ("authors" if src.path and src.path.name == "authors.pt" else
                                  "harness") if f.checkpoint else "none",
            # what the cells read of the checkpoint (the rest holds tensors)
            "ckpt_deviations": list(ckpt.get("deviations", [])),
            "ckpt_dry_run": bool(ckpt.get("dry_run")),
            "ckpt_dataset": ckpt.get("config", {}).get("dataset") if f.checkpoint else None,
            "ckpt_variant": ckpt.get("variant") if f.checkpoint else None,
            "seconds": round(time.perf_counter() - t0, 2)}


def _row_cells(run: Run, row: str, recs: list[tuple[Source, dict]]) -> dict[str, dict]:
    """A row's cells, all its sources (one per seed) pooled."""
    src, results = recs[0][0], [r for _, r in recs]
    first, proto, cfg = results[0], run.spec.protocol, run.cfg
    spec = proto.row(row, src.train_name)
    seeds = [r["seed"] for r in results if r["seed"] is not None]
    facts = {"checkpoint_dry_run": any(r["ckpt_dry_run"] for r in results),
             "pretraining_data": first["ckpt_dataset"] or first["data_source"],
             "variant": first["ckpt_variant"]}
    moved = proto.source_diff(row, src.train_name, src.expect_variant)
    devs = list(dict.fromkeys(run.deviations + [d for r in results for d in r["ckpt_deviations"]]
                              + run.spec.row_notes(cfg, src.kind)))
    protocol = {**run.base, "representation": getattr(src.module, "what", None) or spec.what,
                "feature_dim": first["feature_dim"], "widest_layer": first["widest_layer"],
                "pretraining_data": first["data_source"],
                "checkpoint_source": first["checkpoint_source"]}
    n_classes = len(np.unique(run.data.labels["train"]))
    out = {}
    for col in run.spec.columns:
        j = run.judge(src.kind, spec.published is not None, col.name, moved, **facts)
        compares_to = f"{proto.table}/{spec.published}/{col.name}" if spec.published else None
        cid = f"{run.prefix}/{row}/{col.name}"
        if col.units:  # a property of the representation: the widest layer (K-means: centroids)
            out[cid] = metric_cell([first["widest_layer"]], seeds=seeds, unit="units",
                                   comparable=j["comparable"], compares_to=compares_to,
                                   protocol=protocol, deviations=j["lines"],
                                   protocol_diff=j["protocol_diff"])
            continue
        runs = [v for r in results for v in r["scores"][col.name]]
        std = float(np.std(runs, ddof=1)) if len(runs) > 1 else None
        out[cid] = metric_cell(
            runs, seeds=seeds, comparable=j["comparable"], compares_to=compares_to,
            protocol={**protocol, "C": [r["C"][col.name] for r in results]},
            val_acc_by_C=[r["val_acc"][col.name] for r in results],
            deviations=list(dict.fromkeys(devs + j["lines"])), protocol_diff=j["protocol_diff"],
            n_labels=cfg.per_class * n_classes if col.draws else len(run.data.labels["train"]),
            n_draws=len(first["scores"][col.name]),
            ci95=1.96 * std if std is not None and col.draws else None,
            per_seed=[float(np.mean(r["scores"][col.name])) for r in results])
    return out
