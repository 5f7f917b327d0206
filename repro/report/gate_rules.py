"""The drift gate's rules: how a cell's tolerance follows from its seed runs, which cells are
too noisy to gate (sharpness caps), and which figure verdicts the seeds agree on. The gate
itself (running the smoke pipeline, writing and checking the baseline) is
repro.report.smoke_gate, whose docstring explains the rules' reasons.
"""

from __future__ import annotations

from typing import Any

from repro.report import drift
from repro.report.claims import figure_verdicts

K = 4.0
REL_FLOOR = 1e-6
COUNT_UNITS = frozenset({"steps", "maps", "units", "walks", "equations", "images"})
COUNT_FLOOR = 1.0
RULE = ("tol = 4 x s, s the sample std of the cell over the smoke pipeline run once per seed "
        "in `seeds` (every training and protocol seed set to it), at least one count for "
        "whole-count cells (units steps, maps, units, walks, equations, images) and "
        "1e-6 x max(1, |value|) for the others; "
        "a cell null in every seed (a row the profile does not run) must stay null; exact "
        "(tol 0) on the platform whose fingerprint made the baseline")
# Sharpness caps: the widest tolerance a cell may have, by unit. Wider means the smoke run
# cannot tell a change from seed noise in that cell.
CAPS = {"%": 5.0, "share": 0.1, "ratio": 0.15}
REL_CAP = 0.15  # other units: relative to the cell's magnitude
# Whole counts (COUNT_UNITS): a count of a rare event moves by one step between seeds (0 on
# most, 1 on some), a sample std of at most sqrt(0.3) over six seeds, so a tolerance of at
# most 4 x that; it still fails on three more events. A wider tolerance means the count moves
# by more than one step between seeds.
COUNT_CAP = 2.5


def sharpness_problems(baseline: dict[str, Any], units: dict[str, str]) -> dict[str, str]:
    """Cells whose tolerance is wider than the cap for their unit, that no seed moves although
    they are not whole counts, or that some seeds leave null and others not -> why.

    A non-count cell equal for every seed (or but for the last bits of its floats) measured no
    spread at all: its tolerance is the 1e-6 floor, which another CPU's float noise can exceed (a flipped prediction, another
    top-k image). Its inputs must be drawn by a protocol seed so the sweep sees their spread.
    Whole counts (COUNT_UNITS) are exempt: their floor is one count."""
    problems = {}
    for key, cell in baseline["cells"].items():
        unit = units.get(key, "")
        if any(v is None for v in cell["runs"]) and not all(v is None for v in cell["runs"]):
            problems[key] = (f"null on some seeds only ({cell['runs']}): the row runs or not "
                             "depending on the seed, so no tolerance can gate it")
            continue
        # a spread under the float floor (seeds alike but for their last bits) is none either
        if (unit not in COUNT_UNITS and drift._is_num(cell["value"])
                and (cell.get("std") or 0.0) * K <= REL_FLOOR * max(abs(cell["value"]), 1.0)):
            problems[key] = (f"every seed gives {cell['value']:.6g} {unit}: no measured spread, so "
                             "another CPU's float noise would drift it; draw its inputs by a "
                             "protocol seed (a table unit's `seeds`)")
            continue
        cap = CAPS.get(unit, REL_CAP * max(abs(cell["value"]), 1.0)
                       if drift._is_num(cell["value"]) else 0.0)
        if unit in COUNT_UNITS:  # a count moves in whole steps: one step of flicker is sharp
            cap = max(cap, COUNT_CAP)
        if cell["tol"] > cap:
            problems[key] = (f"tol {cell['tol']:.4g} {unit} > cap {cap:.4g} "
                             f"(seed runs {[round(v, 4) for v in cell['runs']]})")
    return problems


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per thing `new` changes in `old` (cells' value, std, tol, basis; cells added
    or dropped; the rule, the verdicts, the unsharp list): what --rederive prints."""
    out = []
    for key in sorted(set(old["cells"]) | set(new["cells"])):
        a, b = old["cells"].get(key), new["cells"].get(key)
        if a is None or b is None:
            out.append(f"{key}: {'added' if a is None else 'dropped'}")
            continue
        moved = [f"{f} {a.get(f)!r} -> {b.get(f)!r}" for f in ("value", "std", "tol", "basis")
                 if a.get(f) != b.get(f)]
        if moved:
            out.append(f"{key}: {', '.join(moved)}")
    for field in ("rule", "not_run", "verdicts", "unsharp"):
        if old.get(field) != new.get(field):
            out.append(f"{field}: {old.get(field)!r} -> {new.get(field)!r}")
    return out


def seed_verdicts(runs: dict[int, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """Seed runs -> (each figure's verdict where every seed gives the same, {'verdict/<fig>':
    why} where seeds disagree: such a verdict sits on its threshold and cannot be gated)."""
    per_seed = {seed: figure_verdicts(values) for seed, values in runs.items()}
    verdicts, unstable = {}, {}
    for fig in next(iter(per_seed.values()), {}):
        seen = [per_seed[seed][fig] for seed in sorted(per_seed)]
        if len(set(seen)) == 1:
            verdicts[fig] = seen[0]
        else:
            unstable[f"verdict/{fig}"] = f"the seeds' verdicts differ ({seen}): it is not gated"
    return verdicts, unstable


def verdict_changes(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per figure whose verdict differs from the baseline's."""
    now = figure_verdicts(current)
    return [f"VERDICT {fig}: {was} in the baseline, {now.get(fig, 'absent')} now"
            for fig, was in sorted(baseline.get("verdicts", {}).items()) if now.get(fig) != was]
