"""The linear-probe scorer (Tables 1 and 2): a representation's features, C chosen per column
on the selection split (for a regularised evaluator), the test draws scored, and one cell per
column, all the row's sources (one per seed) pooled."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from repro.eval.probe import choose_C, svm_draws
from repro.protocols.probing import Source, features
from repro.protocols.runner import Run
from repro.protocols.unit import Column, Scorer, TableUnit
from repro.context import metric_cell


def _scored(unit: TableUnit) -> list[Column]:
    return [c for c in unit.columns if not c.units]


def _probe(run: Run, src: Source, cache: Path) -> dict:
    """One representation's features, C per column and test scores (a JSON record)."""
    t0 = time.perf_counter()
    cfg, data, stage = run.cfg, run.data, run.stage
    f = features(src, data.images, cfg.features, stage.device, run.input_size, cache,
                 kmeans=getattr(cfg, "kmeans", None))
    X, y = f.sets, data.labels
    pool, pool_rows, val, val_rows = data.select
    take = (lambda a, rows: a if rows is None else a[rows])
    Xs, ys = take(X[pool], pool_rows), take(y[pool], pool_rows)
    Xv, yv = take(X[val], val_rows), take(y[val], val_rows)
    common = dict(solver=cfg.svm.solver, device=stage.device, evaluator=cfg.evaluator,
                  **cfg.svm.options())
    per_class = {c.name: cfg.per_class if c.draws else None for c in _scored(run.unit)}
    # every column's C first, then every column's test draws (the order Table 1 always had)
    sel = {c.name: choose_C(Xs, ys, Xv, yv, grid=list(cfg.svm.C_grid), per_class=per_class[
        c.name], draws=getattr(cfg, c.select_draws) if c.select_draws else 1, seed=cfg.seed,
        **common) for c in _scored(run.unit)}
    scores = {}
    for c in _scored(run.unit):
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
    first, proto, cfg = results[0], run.unit.protocol, run.cfg
    declared = proto.row(row, src.train_name)
    seeds = [r["seed"] for r in results if r["seed"] is not None]
    facts = {"checkpoint_dry_run": any(r["ckpt_dry_run"] for r in results),
             "pretraining_data": first["ckpt_dataset"] or first["data_source"],
             "variant": first["ckpt_variant"]}
    moved = proto.source_diff(row, src.train_name, src.expect_variant)
    devs = list(dict.fromkeys(run.deviations + [d for r in results for d in r["ckpt_deviations"]]
                              + run.unit.row_notes(cfg, src.kind)))
    protocol = {**run.base, "representation": getattr(src.module, "what", None) or declared.what,
                "feature_dim": first["feature_dim"], "widest_layer": first["widest_layer"],
                "pretraining_data": first["data_source"],
                "checkpoint_source": first["checkpoint_source"]}
    n_classes = len(np.unique(run.data.labels["train"]))
    out = {}
    for col in run.unit.columns:
        j = run.judge(src.kind, declared.published is not None, col.name, moved, **facts)
        compares_to = f"{proto.table}/{declared.published}/{col.name}" if declared.published else None
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


# a lambda, so a test that stands in for `_probe` reaches it
LINEAR_PROBE = Scorer("linear probe", compute=lambda run, src, cache: _probe(run, src, cache),
                      cells=lambda run, row, recs: _row_cells(run, row, recs))
