"""Retrace a shipped training run: the longer profile's section, run for its first two logging
windows in a scratch copy of the project, and the seed spread of those windows.

The spread is the tolerance of the retrace test on a platform other than the one that
trained the shipped weights: there GAN losses drift apart in the last bits within a few
steps (Adam's first step, about lr * sign(g), turns rounding in a near-zero gradient into a
whole step), so after 40 steps the run is as far from the shipped one as another seed would
be, not a fixed percentage.

Regenerate the committed spread (tests/golden/shipped_loss_spread.json) after a deliberate
change to a shipped section or to the trainer, on any machine:

    PYTHONPATH=tests python -m shipped_retrace
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / yaml.safe_load((ROOT / "params.yaml").read_text())["paths"]["shipped"]
LONG_PROFILE = "cpu"
GOLDEN = ROOT / "tests" / "golden" / "shipped_loss_spread.json"
SPREAD_SEEDS = [1, 2, 3, 4, 5]
WINDOWS = 2


def profile(name: str) -> dict:
    """The profile `name`, resolved (its `extends` chain merged)."""
    from repro.config import load_profile_by_name

    return load_profile_by_name(name, ROOT / "experiments")


def shipped_sections() -> list[tuple[str, str, dict]]:
    """(profile, train name, section) for every train section that names a shipped folder."""
    from repro.config import available_profiles

    return [(p, name, sec) for p in available_profiles(ROOT / "experiments")
            for name, sec in (profile(p).get("train") or {}).items() if sec.get("shipped")]


def shipped_names() -> list[str]:
    return sorted({name for _, name, _ in shipped_sections()})


def losses(live: Path) -> list[tuple[float, float]]:
    """The logged (loss_d, loss_g) rows in order. By row, not by step label: runs made before
    the train stage set DVCLive's step ahead of logging label each row one log early."""
    def read(key):
        with open(live / "plots" / "metrics" / "train" / f"{key}.tsv") as f:
            return [float(r[key]) for r in csv.DictReader(f, delimiter="\t")]
    return list(zip(read("loss_d"), read("loss_g")))


def retrace(name: str, seed: int, work: Path) -> tuple[list[tuple[float, float]], str]:
    """The longer profile's `name` section for WINDOWS logging windows with `seed`, run in
    `work` (a scratch copy of params.yaml and experiments/): its logged losses and data source.
    Raises the train stage's MissingData / ReproError when the training data is absent."""
    from repro.stages.train import run as train_run

    work.mkdir(parents=True, exist_ok=True)
    for item in ("params.yaml", "experiments"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, work / item)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["profile"] = LONG_PROFILE
    params["data"]["search"] = [str((ROOT / p).resolve()) for p in params["data"]["search"]]
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    prof = work / "experiments" / f"{LONG_PROFILE}.yaml"
    data = profile(LONG_PROFILE)  # written back resolved, extending nothing
    sec = data["train"][name]
    sec["max_steps"] = WINDOWS * sec.get("log_every", 50)
    sec["seeds"] = [seed]
    prof.write_text(yaml.safe_dump(data))
    # the train stage reads params.yaml and the profile from the working directory
    here = Path.cwd()
    os.chdir(work)
    try:
        train_run(name, work / "ckpt", work / "live", work / "prov", resume=False)
    finally:
        os.chdir(here)
    source = json.loads((work / "prov" / f"train_{name}.json").read_text())["runs"][0]["data_source"]
    return losses(work / "live"), source


def spread(name: str, seeds: list[int], scratch: Path) -> dict:
    """Per logging window, the sample std over `seeds` of (loss_d, loss_g)."""
    runs = [retrace(name, s, scratch / f"{name}_seed{s}")[0] for s in seeds]
    std = [[statistics.stdev(r[w][k] for r in runs) for k in range(2)] for w in range(WINDOWS)]
    return {"seeds": seeds, "windows": WINDOWS, "std": std,
            "runs": [[list(row) for row in r] for r in runs]}


def main() -> None:
    import tempfile

    from repro.utils.platform import fingerprint

    out = {"what": "sample std over seeds of each logged (loss_d, loss_g) window of the longer "
                   f"profile's first {WINDOWS} logging windows, per shipped section",
           "regenerate": "PYTHONPATH=tests python -m shipped_retrace",
           "platform": fingerprint(), "sections": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in shipped_names():
            print(f"{name}: seeds {SPREAD_SEEDS}", file=sys.stderr)
            out["sections"][name] = spread(name, SPREAD_SEEDS, Path(tmp))
    tmp_out = GOLDEN.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(out, indent=1) + "\n")
    tmp_out.replace(GOLDEN)
    print(f"wrote {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()
