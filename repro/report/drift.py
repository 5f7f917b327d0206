"""Metric-drift gate: compare every metrics cell's `value` with a stored baseline.

    python -m repro.report.drift --baseline results/baselines/smoke.json --metrics results/metrics
        [--tolerance-file tolerances.yaml] [--strict]

Baseline file (JSON, written only by `python -m repro.report.smoke_gate --update`, which runs
the smoke pipeline once per seed and records the platform; reviewed in git):

    {"regenerate": "<the command that wrote it>", "seeds": [...], "reference_seed": 0,
     "platform_id": "...", "k": 4.0, "rel_floor": 1e-6, "count_floor": 1.0,
     "cells": {"<metrics file stem>/<cell id>": {"value": 3.1, "runs": [...], "std": ...,
               "tol": ..., "basis": "seed spread"}, ...}}

A cell drifts when |new - old| > tol (null and NaN equal only themselves). A baseline cell that
is missing now is a failure; a new cell is a warning (a failure with --strict). Exit status: 0
clean, 1 drift, 2 bad input.

A baseline is read back only if it is what the gate wrote: each cell's value is its reference
seed's run and its std and tol follow from its runs by the stored rule (`check_derived`), so a
hand-edited value or tolerance is named as such instead of blamed on the run.

Tolerances: `tol` of each baseline cell (absolute, in the cell's unit), unless the tolerance
file (YAML or JSON: `{"<glob over cell keys>": tol}`, first matching pattern wins) matches the
cell, which overrides it for the check.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from repro.errors import ReproError, cli_errors
from repro.report.inputs import read_metrics_dir

DRIFT, MISSING, NEW = "DRIFT", "MISSING", "NEW"
# The one command that writes a baseline (repro.report.smoke_gate): seed runs and platform.
REGENERATE = "python -m repro.report.smoke_gate --update"


@dataclass
class Finding:
    status: str
    cell: str
    old: Any
    new: Any
    diff: float | None
    tol: float | None


def current_values(metrics_dir: Path) -> dict[str, Any]:
    """'<file stem>/<cell id>' -> value, for every cell of every metrics file."""
    metrics_dir = Path(metrics_dir)
    if not metrics_dir.is_dir():
        raise ReproError(f"metrics directory {metrics_dir} not found; run the pipeline first")
    metrics = read_metrics_dir(metrics_dir)
    if not metrics:
        raise ReproError(f"no metrics files (*.json) in {metrics_dir}; run the pipeline first")
    return {f"{stem}/{cid}": cell.value for stem, cells in metrics.items()
            for cid, cell in cells.items()}


def _restore(path: Path) -> str:
    return (f"restore the committed one (git checkout -- {path}) or regenerate it: {REGENERATE} "
            "(six smoke runs)")


def read_baseline(path: Path) -> dict[str, Any]:
    """A baseline as the gate wrote it; a missing, damaged or hand-edited one is refused with
    the way back (git, or the command that writes baselines)."""
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"baseline {path} not found; {_restore(path)}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReproError(f"baseline {path} is damaged (not valid JSON: {err}); "
                         f"{_restore(path)}") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, dict) or not all(
        isinstance(c, dict) and "value" in c for c in cells.values()
    ):
        raise ReproError(
            f"{path} is not a drift baseline: expected {{\"cells\": {{\"<file>/<cell id>\": "
            f"{{\"value\": v, \"tol\": t, ...}}}}}}; {_restore(path)}"
        )
    edited = check_derived(data)
    if edited:
        raise ReproError(f"baseline {path} was edited by hand (its values must be the reference "
                         f"seed's runs and its tolerances follow from the runs): "
                         f"{'; '.join(edited[:5])}{' ...' if len(edited) > 5 else ''}; "
                         f"{_restore(path)}")
    return data


def _floor(basis: str, value: Any, rel_floor: float, count_floor: float) -> float:
    """The least tolerance of a cell by its basis (see seeded_baseline)."""
    return {"exact": 0.0, "count": count_floor}.get(basis, rel_floor * max(1.0, abs(value))
                                                     if _is_num(value) else 0.0)


def _same(a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b):
        return _diff(a, b) <= 1e-12 * max(1.0, abs(a))
    return a == b


def check_derived(baseline: dict[str, Any]) -> list[str]:
    """What of a seeded baseline (one with `seeds` and per-cell `runs`) disagrees with what
    its runs give: each cell's value is the reference seed's run, its std their spread and its
    tol k x std at least the basis's floor. [] when it is as the gate wrote it."""
    seeds, ref = baseline.get("seeds"), baseline.get("reference_seed")
    if not isinstance(seeds, list) or ref not in seeds:
        return []  # not a seeded baseline: smoke_gate.load_baseline refuses it
    i, k = seeds.index(ref), float(baseline.get("k", 0.0))
    rel, count = float(baseline.get("rel_floor", 0.0)), float(baseline.get("count_floor", 1.0))
    out = []
    for key, cell in sorted(baseline["cells"].items()):
        runs = cell.get("runs")
        if not isinstance(runs, list) or len(runs) != len(seeds):
            out.append(f"{key} has {len(runs) if isinstance(runs, list) else 'no'} runs for "
                       f"{len(seeds)} seeds")
            continue
        if not _same(cell["value"], runs[i]):
            out.append(f"{key} holds value {cell['value']!r}, its seed-{ref} run is {runs[i]!r}")
            continue
        floor = _floor(cell.get("basis", "exact"), runs[i], rel, count)
        std, tol = seed_tolerance(runs, k, floor)
        if not (_same(cell.get("std"), std) and _same(cell.get("tol"), tol)):
            out.append(f"{key} holds std {cell.get('std')!r} and tol {cell.get('tol')!r}, its "
                       f"runs give {std!r} and {tol!r}")
    return out


def read_tolerances(path: Path | None) -> list[tuple[str, float]]:
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"tolerance file {path} not found")
    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as err:
        raise ReproError(f"{path} is not valid YAML/JSON: {err}") from None
    if not isinstance(data, dict):
        raise ReproError(f"{path} must map cell-key globs to tolerances, e.g. 'table3_*/*': 0.1")
    out = []
    for pattern, tol in data.items():
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0:
            raise ReproError(f"{path}: tolerance of {pattern!r} must be a number >= 0, not {tol!r}")
        out.append((str(pattern), float(tol)))
    return out


def _match(key: str, tolerances: list[tuple[str, float]]) -> float | None:
    return next((tol for pattern, tol in tolerances if fnmatch(key, pattern)), None)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _diff(old: Any, new: Any) -> float:
    """|new - old|; 0 for equal non-numbers and for NaN vs NaN, inf for incomparable values."""
    if _is_num(old) and _is_num(new):
        if math.isnan(old) and math.isnan(new):
            return 0.0
        if math.isnan(old) or math.isnan(new):
            return math.inf
        return abs(new - old)
    return 0.0 if old == new else math.inf


def check(baseline: dict[str, Any], current: dict[str, Any],
          tolerances: list[tuple[str, float]] | None = None,
          exact: bool = False) -> list[Finding]:
    """Every drifting, missing and new cell (cells within tolerance are not listed).

    exact: every cell must equal its baseline value (tolerance 0), for a run on the very
    platform that made the baseline; otherwise each cell's own `tol` (or the tolerance file's).
    A `not_run` cell must stay null (or absent) on any platform.
    """
    cells, not_run = baseline["cells"], baseline.get("not_run", [])
    default = float(baseline.get("default_tol", 0.0))
    findings = []
    for key in sorted(cells):
        old = cells[key]["value"]
        tol = 0.0 if exact else _match(key, tolerances or [])
        tol = float(cells[key].get("tol", default)) if tol is None else tol
        if key not in current:
            findings.append(Finding(MISSING, key, old, None, None, tol))
            continue
        diff = _diff(old, current[key])
        if diff > tol:
            findings.append(Finding(DRIFT, key, old, current[key], diff, tol))
    findings += [Finding(DRIFT, key, None, current[key], math.inf, None)
                 for key in not_run if current.get(key) is not None]
    findings += [Finding(NEW, key, None, current[key], None, None)
                 for key in sorted(set(current) - set(cells) - set(not_run))]
    return findings


def _finite_numbers(values: list[Any]) -> bool:
    return all(_is_num(v) and math.isfinite(v) for v in values)


def seed_tolerance(runs: list[Any], k: float, floor: float) -> tuple[float | None, float]:
    """(std over seeds, tolerance) of one cell: tol = k * std, at least `floor`.

    The floor covers what six seeds alike cannot bound: last-bit float noise, or one step of
    a whole count. A cell that is not a number (or not one in every run) must match exactly
    (tol 0).
    """
    if not runs or not _finite_numbers(runs):
        return None, 0.0
    std = statistics.stdev(runs) if len(runs) > 1 else 0.0
    return std, max(k * std, floor)


def seeded_baseline(runs: dict[int, dict[str, Any]], reference_seed: int, k: float,
                    rel_floor: float, rule: str, platform: dict[str, Any], platform_id: str,
                    regenerate: str, count_cells: frozenset[str] = frozenset(),
                    count_floor: float = 1.0) -> dict[str, Any]:
    """A baseline from one smoke run per seed: the reference seed's values, per-cell spread
    over seeds and the tolerance derived from it by `rule`.

    Each cell names the basis of its tolerance: `seed spread` (floor rel_floor x max(1, |v|),
    v the reference seed's value), `count` (a cell of `count_cells`, floor `count_floor`) or
    `exact` (not a finite number in every run: tol 0). A cell null for every seed is a row the
    profile does not run: it has no value to hold a tolerance, so it is listed under `not_run`
    instead, and `check` fails it if it ever holds a number."""
    ref = runs[reference_seed]
    seeds = sorted(runs)
    missing = {s: sorted(set(ref) ^ set(runs[s])) for s in seeds if set(runs[s]) != set(ref)}
    if missing:
        raise ReproError(f"seed runs disagree on their cells (seed: differing cells): {missing}")
    cells, not_run = {}, []
    for key in sorted(ref):
        values = [runs[s][key] for s in seeds]
        if all(v is None for v in values):
            not_run.append(key)
            continue
        basis = ("exact" if not _finite_numbers(values) else
                 "count" if key in count_cells else "seed spread")
        std, tol = seed_tolerance(values, k, _floor(basis, ref[key], rel_floor, count_floor))
        cells[key] = {"value": ref[key], "runs": values, "std": std, "tol": tol, "basis": basis}
    return {"regenerate": regenerate, "rule": rule, "k": k, "rel_floor": rel_floor,
            "count_floor": count_floor, "seeds": seeds, "reference_seed": reference_seed,
            "platform": platform, "platform_id": platform_id, "default_tol": 0.0,
            "cells": cells, "not_run": not_run}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return repr(v) if _is_num(v) else str(v)


def format_findings(findings: list[Finding]) -> str:
    rows = [[f.status, f.cell, _fmt(f.old), _fmt(f.new),
             "-" if f.diff is None else f"{f.diff:.6g}", _fmt(f.tol)] for f in findings]
    return tabulate(rows, headers=["status", "cell", "old value", "new value", "|diff|",
                                   "tolerance"], tablefmt="simple", disable_numparse=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m repro.report.drift",
                                     description="Fail when metrics drift from a baseline.")
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, default=Path("results/metrics"))
    parser.add_argument("--tolerance-file", type=Path, default=None,
                        help="YAML/JSON {'<glob over file/cell keys>': tol}; overrides the "
                             "baseline's tol when checking")
    parser.add_argument("--strict", action="store_true", help="new cells fail too")
    parser.add_argument("--update", action="store_true", help=f"refused: use {REGENERATE}")
    args = parser.parse_args(argv)
    if args.update:
        # One metrics folder holds neither the seed runs the tolerances come from nor the
        # platform the exact comparison needs: a baseline written from it would be refused.
        parser.error(f"--update cannot write a baseline from one metrics folder (it needs the "
                     f"smoke pipeline's seed runs and this platform's fingerprint); run {REGENERATE}")
    return args


def run(args: argparse.Namespace) -> int:
    current = current_values(args.metrics)
    baseline = read_baseline(args.baseline)
    return report(check(baseline, current, read_tolerances(args.tolerance_file)), baseline,
                  len(current), args.strict, REGENERATE)


def report(findings: list[Finding], baseline: dict[str, Any], n_current: int, strict: bool,
           regenerate: str | None = None) -> int:
    """Print the findings; 1 when a cell drifts or is missing (or is new, with strict)."""
    failing = {DRIFT, MISSING} | ({NEW} if strict else set())
    failed = [f for f in findings if f.status in failing]
    counts = {s: sum(f.status == s for f in findings) for s in (DRIFT, MISSING, NEW)}
    print(f"{len(baseline['cells'])} baseline cells, {n_current} current: "
          f"{counts[DRIFT]} drifting, {counts[MISSING]} missing, {counts[NEW]} new"
          + ("" if strict or not counts[NEW] else " (new cells are warnings; --strict fails)"))
    if findings:
        print(format_findings(findings))
    if failed:
        print(f"metric drift: {len(failed)} cell(s) outside tolerance or missing. If the change "
              f"is intended, regenerate the baseline: {baseline.get('regenerate') or regenerate}")
        return 1
    return 0


@cli_errors
def main(argv: list[str] | None = None) -> None:
    raise SystemExit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
