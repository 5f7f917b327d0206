"""The CI drift gate: run the `smoke` pipeline in a scratch copy, compare with the baseline.

    python -m repro.report.smoke_gate                 # fail (exit 1) listing drifting cells
    python -m repro.report.smoke_gate --update        # regenerate the baseline on purpose
    python -m repro.report.smoke_gate --update --stage figures   # only that stage's cells
    python -m repro.report.smoke_gate --update --runs DIR   # keep / reuse each seed's run
    python -m repro.report.smoke_gate --rederive      # new tolerance rule, same stored runs
    python -m repro.report.smoke_gate --foreign       # check as if on another kind of machine
    python -m repro.report.smoke_gate --keep DIR      # leave the run in DIR (CI reuses it)

The baseline (`<paths.baselines>/smoke.json`, params.yaml) is made from the smoke pipeline run
once per seed in `SEEDS` (every training seed and every protocol seed of the profile set to
that seed: `with_seed`). It stores, per
cell, the reference seed's value, the values of all seeds, their spread and a tolerance:

    tol = K x s   (K = 4; s = sample standard deviation over the seeds), at least
    - one count for whole-count cells (COUNT_UNITS: feature widths, jumps, dropped maps,
      walks with a jump, equations, images a judge got wrong): a
      count moves in whole steps, and six seeds alike bound nothing below one step. What
      keeps a count at zero sharp (Fig. 4's jumps) is the figure's verdict, below;
    - 1e-6 x max(1, |value|) for the others, so that cells every seed gives alike absorb
      only last-bit float noise (`sharpness_problems` refuses such a cell unless a count).
    A cell null in every seed is a row the profile does not run: it must stay null.

Each figure's verdict (`repro.report.claims`, derived from the cells as the report derives it)
is stored too, where every seed gives the same one, and must stay that verdict on every
platform: a verdict is the qualitative result itself, so one new jump in Fig. 4's walks, which
its count's one-count floor lets through, still fails the gate.

Float kernels differ in their last bits between kinds of CPU (instruction set, BLAS, thread
count), and that difference grows through training like a change of seed, at most. So:
- on the platform that made the baseline (same fingerprint, `repro.utils.platform`) the
  smoke pipeline is bit-identical and every cell must equal its value exactly;
- on any other platform, every cell must lie within its tolerance of the reference value.
A cell that flips between discrete values from seed to seed gets a wide tolerance and catches
nothing; `--update` (and `--rederive`) refuses a baseline with such cells (see
`sharpness_problems`): make the smoke model or its sample counts steadier instead.

The rules (K, the floors, the caps, the verdicts the seeds agree on) are in
repro.report.gate_rules; `--runs DIR` keeps each seed's run (repro.report.seed_runs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from repro.config import load_params
from repro.errors import ReproError, cli_errors
from repro.report import drift
from repro.report.gate_rules import (  # noqa: F401 (CAPS, REL_CAP: read as smoke_gate.X)
    CAPS, COUNT_FLOOR, COUNT_UNITS, K, REL_CAP, REL_FLOOR, RULE, changes, seed_verdicts,
    sharpness_problems, verdict_changes,
)
from repro.report.seed_runs import SeedRuns
from repro.scratch import rerun_pipeline, run_pipeline
from repro.tables import units as table_units
from repro.train.config import TrainConfig
from repro.utils.io import write_json
from repro.utils.platform import fingerprint, fingerprint_id

REGENERATE = drift.REGENERATE
REDERIVE = "python -m repro.report.smoke_gate --rederive"
PROFILE = "smoke"
SEEDS = (0, 1, 2, 3, 4, 5)
THREADS = 2

Edit = Callable[[dict[str, Any]], dict[str, Any]]


# The seeds of the smoke protocol besides the training seeds (the `seeds` lists): each table's
# (its unit's `seeds`: label draws and splits, K-means, the supervised search, real-image
# subsets) and the figure judges'. The sweep varies them all, so a cell that no training seed
# moves still gets a spread.
FIGURE_SEEDS = ("figures.judge_seed",)


def protocol_seeds() -> list[str]:
    """Profile paths of every protocol seed ("table1.kmeans.seed")."""
    return [f"{name}.{path}" for name, unit in table_units().items() for path in unit.seeds] + list(
        FIGURE_SEEDS)


def with_seed(seed: int) -> Edit:
    """A profile edit that sets every training seed list to [seed] and every protocol seed
    (protocol_seeds) to seed. A shipped model's section is left alone: its seed is the one its
    fixed weights were trained with (repro.train.shipped), and the judges' seeds still vary."""
    def edit(node: Any) -> Any:
        if isinstance(node, dict) and node.get("shipped"):
            return node
        if isinstance(node, dict):
            return {k: [seed] if k == "seeds" and isinstance(v, list) else edit(v)
                    for k, v in node.items()}
        return node

    def apply(profile: dict[str, Any]) -> dict[str, Any]:
        out = edit(profile)
        for path in protocol_seeds():
            *parents, key = path.split(".")
            node = out
            for part in parents:
                node = node.setdefault(part, {})
            node[key] = seed
        return out
    return apply


def with_lr_scale(factor: float, sections: tuple[str, ...] | None = None) -> Edit:
    """A profile edit that multiplies the learning rate of every section trained in the run,
    or of `sections` only (shipped ones are fixed weights, not trained)."""
    default = TrainConfig.model_fields["lr"].default

    def edit(profile: dict[str, Any]) -> dict[str, Any]:
        unknown = set(sections or ()) - set(profile.get("train", {}))
        if unknown:
            raise ReproError(f"no train section {sorted(unknown)} in the profile; it has "
                             f"{sorted(profile.get('train', {}))}")
        train = {name: sec if sec.get("shipped") or (sections and name not in sections) else
                 {**sec, "lr": float(sec.get("lr", default)) * factor}
                 for name, sec in profile.get("train", {}).items()}
        return {**profile, "train": train}
    return edit


def _pin_threads() -> None:
    # Thread count changes float summation order: pin it (it is part of the fingerprint too).
    os.environ["OMP_NUM_THREADS"] = str(THREADS)
    torch.set_num_threads(THREADS)


def metrics_values(metrics: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """A metrics folder -> ({'<file>/<cell>': value}, {'<file>/<cell>': unit})."""
    cells = {f"{stem}/{cid}": cell for stem, file_cells in drift.read_metrics_dir(metrics).items()
             for cid, cell in file_cells.items()}
    if not cells:
        raise ReproError(f"no metrics in {metrics}; the smoke pipeline wrote none")
    return ({k: c.value for k, c in cells.items()}, {k: c.unit for k, c in cells.items()})


def run_smoke(repo: Path, dest: Path, edit: Edit | None = None) -> Path:
    """The smoke pipeline in `dest` (a scratch copy), threads pinned -> its metrics folder."""
    _pin_threads()
    return _metrics_dir(repo, run_pipeline(repo, dest, PROFILE, edit_profile=edit))


def _metrics_dir(repo: Path, run: Path) -> Path:
    return run / load_params(repo / "params.yaml").paths["metrics"]


def smoke_values(repo: Path, workdir: Path | None, edit: Edit | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the smoke pipeline once in a temporary folder -> (values, units)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        return metrics_values(run_smoke(repo, Path(tmp) / "smoke", edit))


def update(repo: Path, workdir: Path | None, seeds: tuple[int, ...] = SEEDS,
           force: bool = False, runs_dir: Path | None = None) -> int:
    store = SeedRuns(runs_dir, repo, "pipeline")
    runs, units = {}, {}
    for seed in seeds:
        print(f"smoke pipeline, seed {seed} ({len(runs) + 1}/{len(seeds)})", flush=True)
        runs[seed], units = store.get(seed, lambda: smoke_values(repo, workdir, with_seed(seed)))
    fp = fingerprint(THREADS)
    # the reference values are the first seed's
    return _write_baseline(repo, runs, seeds[0], units, fp, fingerprint_id(fp), force)


# Stages whose cells `--update --stage` can regenerate alone: their cells depend on no
# trained-in-the-run model (the figures read shipped generators and judges), so running the
# stage and what it depends on per seed gives the cells a whole-pipeline sweep would.
STAGE_ONLY = {"figures": "figures"}  # dvc stage -> its metrics file stem


def stage_runs(old: dict[str, Any], stem: str, fresh: dict[int, dict[str, Any]]
               ) -> dict[int, dict[str, Any]]:
    """The baseline's stored seed runs with every `<stem>/` cell replaced by `fresh`'s (a
    seed -> values map of that stage's new runs; cells it no longer writes are dropped)."""
    out = {}
    for seed, values in fresh.items():
        i = old["seeds"].index(seed)
        kept = {key: cell["runs"][i] for key, cell in old["cells"].items()
                if not key.startswith(f"{stem}/")}
        kept.update((key, None) for key in old.get("not_run", []) if not key.startswith(f"{stem}/"))
        out[seed] = {**kept, **{k: v for k, v in values.items() if k.startswith(f"{stem}/")}}
    return out


def update_stage(repo: Path, workdir: Path | None, stage: str, force: bool = False,
                 runs_dir: Path | None = None) -> int:
    """Regenerate only `stage`'s cells (and the verdicts) of the committed baseline: the stage
    and its upstream run once per baseline seed, the other cells keep their stored runs. On
    the baseline's platform only: the kept runs were measured there."""
    if stage not in STAGE_ONLY:
        raise ReproError(f"--stage {stage!r}: only {sorted(STAGE_ONLY)} can be regenerated "
                         f"alone; use {REGENERATE} for the whole baseline")
    old, stem = load_baseline(repo), STAGE_ONLY[stage]
    fp = fingerprint(THREADS)
    if fingerprint_id(fp) != old["platform_id"]:
        raise ReproError(f"this platform ({fingerprint_id(fp)}) is not the baseline's "
                         f"({old['platform_id']}): the kept cells would mix platforms; run "
                         f"{REGENERATE}")
    def measure(seed: int) -> tuple[dict[str, Any], dict[str, str]]:
        _pin_threads()
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            run = run_pipeline(repo, Path(tmp) / "smoke", PROFILE, edit_profile=with_seed(seed),
                               targets=[stage])
            return metrics_values(_metrics_dir(repo, run))

    store = SeedRuns(runs_dir, repo, f"stage:{stage}")
    fresh, units = {}, {}
    for n, seed in enumerate(old["seeds"], 1):
        print(f"smoke stage {stage}, seed {seed} ({n}/{len(old['seeds'])})", flush=True)
        fresh[seed], units = store.get(seed, lambda: measure(seed))
    kept_units = {k: u for k, u in old["units"].items() if not k.startswith(f"{stem}/")}
    units = {**kept_units, **{k: u for k, u in units.items() if k.startswith(f"{stem}/")}}
    return _write_baseline(repo, stage_runs(old, stem, fresh), old["reference_seed"], units,
                           old["platform"], old["platform_id"], force,
                           stage_updated=f"{stage}: {REGENERATE} --stage {stage} (the other "
                                         f"cells' runs are those of `{REGENERATE}`)")


def rederive(repo: Path, force: bool = False) -> int:
    """Re-derive every cell's tolerance from the seed runs the baseline already stores, under
    the current RULE: for a change of the rule alone, with no pipeline run. The runs, their
    platform and its fingerprint stay those of the `--update` that measured them."""
    old = load_baseline(repo)
    runs = {seed: {**{key: cell["runs"][i] for key, cell in old["cells"].items()},
                   **dict.fromkeys(old.get("not_run", []))}
            for i, seed in enumerate(old["seeds"])}
    # a stage update's note stays: it still says which command measured which runs
    kept = {"stage_updated": old["stage_updated"]} if "stage_updated" in old else {}
    return _write_baseline(repo, runs, old["reference_seed"], old["units"], old["platform"],
                           old["platform_id"], force, old=old, **kept,
                           rederived=f"{REDERIVE} (the runs are those of `{REGENERATE}`)")


def _write_baseline(repo: Path, runs: dict[int, dict[str, Any]], reference_seed: int,
                    units: dict[str, str], fp: dict[str, Any], fp_id: str, force: bool,
                    old: dict[str, Any] | None = None, **extra: Any) -> int:
    """Derive and write the baseline; `old`: the one it replaces, whose changes are listed."""
    path = baseline_path(repo)
    counts = frozenset(k for k, unit in units.items() if unit in COUNT_UNITS)
    baseline = drift.seeded_baseline(runs, reference_seed, K, REL_FLOOR, RULE, fp, fp_id,
                                     REGENERATE, count_cells=counts, count_floor=COUNT_FLOOR)
    verdicts, unstable = seed_verdicts(runs)
    baseline.update(units=units, verdicts=verdicts, **extra)
    problems = {**sharpness_problems(baseline, units), **unstable}
    if problems and not force:
        raise ReproError("these cells vary too much between seeds to gate anything; make the "
                         "smoke run steadier (larger samples, a better-trained model) or pass "
                         "--force to write the baseline anyway, listing them as unsharp:\n  "
                         + "\n  ".join(f"{k}: {v}" for k, v in problems.items()))
    # Kept in the baseline so that every gate run names them: on another platform these cells
    # are checked, but only loosely.
    baseline["unsharp"] = problems
    write_json(path, baseline)
    print(f"wrote {path}: {len(baseline['cells'])} cells from seeds {sorted(runs)} on "
          f"{fp['cpu_model']} ({fp_id})"
          + (f"; {len(problems)} cells above their sharpness cap" if problems else ""))
    if old is not None:
        changed = changes(old, baseline)
        print(f"{len(changed)} change(s) to the baseline" + (":" if changed else
              " (the rule gives the stored tolerances again)"))
        for line in changed:
            print(f"  {line}")
    return 0


def baseline_path(repo: Path) -> Path:
    return repo / load_params(repo / "params.yaml").paths["baselines"] / "smoke.json"


def load_baseline(repo: Path) -> dict[str, Any]:
    path = baseline_path(repo)
    baseline = drift.read_baseline(path)
    if "platform_id" not in baseline or "seeds" not in baseline:
        raise ReproError(f"{path} has no platform fingerprint or seed runs (an old single-run "
                         f"baseline); regenerate it: {REGENERATE}")
    return baseline


def compare(baseline: dict[str, Any], current: dict[str, Any], foreign: bool = False) -> int:
    """Compare one smoke run's values with the baseline and print the verdict; 0 clean,
    1 drift. `foreign`: statistical tolerances even on the baseline's own platform."""
    fp = fingerprint(THREADS)
    same = fingerprint_id(fp) == baseline["platform_id"] and not foreign
    print(f"platform {fingerprint_id(fp)} ({fp['cpu_model']}, {fp['torch_cpu_capability']}, "
          f"{fp['threads']} threads); baseline {baseline['platform_id']} "
          f"({baseline['platform'].get('cpu_model')}, "
          f"{baseline['platform'].get('torch_cpu_capability')}): "
          + ("same platform, exact comparison" if same else
             f"{'treated as ' if foreign else ''}another platform, tolerances from the seed "
             f"spread ({baseline['rule']})"))
    unsharp = baseline.get("unsharp", {})
    if unsharp and not same:
        print(f"{len(unsharp)} cell(s) vary so much between seeds that their tolerance exceeds "
              f"its cap; they catch only large changes here: {', '.join(sorted(unsharp))}")
    code = drift.report(drift.check(baseline, current, exact=same), baseline, len(current),
                        strict=False)
    changed = verdict_changes(baseline, current)
    for line in changed:
        print(line)
    if "verdicts" not in baseline:
        print(f"the baseline stores no figure verdicts (an older baseline); regenerate it: {REGENERATE}")
    return 1 if changed else code


def check(repo: Path, workdir: Path | None, foreign: bool = False, edit: Edit | None = None,
          keep: Path | None = None, reuse: Path | None = None) -> int:
    """Run the smoke pipeline (in `keep`, left there for reuse, else a temporary folder) and
    compare it with the baseline. `reuse`: an unedited smoke run of this tree, copied and
    rerun with `edit` applied, so only the stages the edit reaches run again."""
    baseline = load_baseline(repo)
    if reuse is not None:
        _pin_threads()
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            out = rerun_pipeline(reuse, Path(tmp) / "smoke", PROFILE, edit)
            current, _ = metrics_values(_metrics_dir(repo, out))
    elif keep is not None:
        current, _ = metrics_values(run_smoke(repo, keep, edit))
    else:
        current, _ = smoke_values(repo, workdir, edit)
    return compare(baseline, current, foreign)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m repro.report.smoke_gate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true",
                    help=f"regenerate the baseline from seeds {list(SEEDS)} (one smoke run "
                         "each; provenance wall_time_s says how long)")
    ap.add_argument("--rederive", action="store_true",
                    help="re-derive the tolerances of the committed baseline from its stored "
                         "seed runs under the current rule (seconds; no pipeline run)")
    ap.add_argument("--stage", choices=sorted(STAGE_ONLY), default=None,
                    help="with --update: rerun only this stage (and what it depends on) per "
                         "seed and replace only its cells, keeping the others' stored runs")
    ap.add_argument("--force", action="store_true",
                    help="with --update or --rederive: write the baseline even if cells exceed "
                         "their cap")
    ap.add_argument("--runs", type=Path, default=None, metavar="DIR",
                    help="with --update: keep each seed's measured cells in DIR as it finishes, "
                         "and read back those the same tree measured (resume an interrupted "
                         "update, or rerun a refused one with --force at no cost)")
    ap.add_argument("--foreign", action="store_true",
                    help="compare with the statistical tolerances even on the baseline's platform")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="scratch folder for the pipeline runs (default: the system's temp)")
    ap.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="run the smoke pipeline in DIR and leave it there (the tests reuse it "
                         "through REPRO_SMOKE_RUN=DIR, so CI runs it once)")
    args = ap.parse_args(argv)
    repo = Path(".")
    if args.update and args.rederive:
        ap.error("--update measures new runs, --rederive reuses the stored ones: pass one")
    if (args.stage or args.runs) and not args.update:
        ap.error("--stage and --runs work with --update only")
    code = (update_stage(repo, args.workdir, args.stage, force=args.force, runs_dir=args.runs)
            if args.update and args.stage
            else update(repo, args.workdir, force=args.force, runs_dir=args.runs) if args.update
            else rederive(repo, force=args.force) if args.rederive
            else check(repo, args.workdir, foreign=args.foreign, keep=args.keep))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
