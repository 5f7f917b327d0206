"""The CI drift gate: run the `smoke` pipeline in a scratch copy, compare with the baseline.

    python -m repro.report.smoke_gate            # fail (exit 1) listing drifting cells
    python -m repro.report.smoke_gate --update   # regenerate the baseline on purpose

The baseline lives at `<paths.baselines>/smoke.json` (params.yaml). The smoke pipeline is
bit-deterministic on CPU (seeded runs, fixed thread count), so every cell's tolerance is 0
unless the baseline says otherwise.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from repro.config import load_params
from repro.errors import cli_errors
from repro.report import drift
from repro.scratch import run_pipeline

REGENERATE = "python -m repro.report.smoke_gate --update"


def run(update: bool, workdir: Path | None, repo: Path = Path(".")) -> int:
    params = load_params(repo / "params.yaml")
    baseline = repo / params.paths["baselines"] / "smoke.json"
    # Thread count changes float summation order; pin it so the gate is exact across machines.
    os.environ["OMP_NUM_THREADS"] = "2"
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = run_pipeline(repo, Path(tmp) / "smoke", "smoke")
        metrics = out / params.paths["metrics"]
        args = drift.parse_args(["--baseline", str(baseline), "--metrics", str(metrics)]
                                + (["--update"] if update else []))
        code = drift.run(args)
    if update:
        data = drift.read_baseline(baseline)
        data["regenerate"] = REGENERATE
        from repro.utils.io import write_json

        write_json(baseline, data)
    return code


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true", help="regenerate the baseline")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: system tmp)")
    args = ap.parse_args(argv)
    raise SystemExit(run(args.update, args.workdir))


if __name__ == "__main__":
    main()
