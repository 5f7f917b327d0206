"""Table 3's learning curve: 1-NN error of generated samples against training length and
against the number of samples, on a validation split carved from the training digits.

Table 3's rows depend on how long the conditional generators train and on how many samples
the 1-NN classifier is fitted on; the profiles must choose both without looking at the test
split. This command carves `n_valid` digits (a seeded permutation) out of the section's
training split, trains each model of `models` on the rest with the hyperparameters of its
`train.<name>` section (at the full learning rate: the decay epochs are left out, so every
checkpoint is a point of one run), and after each epoch in `epochs[<name>]` fits 1-NN on the
first n of one stream of samples (as the table3 stage does) for every n in `n_samples`,
classifying the validation digits. "Real Data" fits 1-NN on the first n carved training
digits. It writes one JSON file, which the report draws (repro.report.curve):

    python -m repro.stages.table3_curve --out results/table3_curve.json

Not a pipeline stage (it trains its own models, which the default profile's 15-minute budget
has no room for): rerun it after changing a Table 3 model's section.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from pydantic import Field, PositiveInt

from repro.config import Section
from repro.data.loading import load_dataset
from repro.errors import ReproError, cli_errors
from repro.protocols.generated import chunk_ends, error, flat01, sample_stream, streaming
from repro.context import Stage
from repro.stages.train import TrainStageConfig
from repro.tables import table3
from repro.train.trainer import GANTrainer
from repro.utils.io import write_json
from repro.utils.platform import fingerprint
from repro.utils.progress import progress
from repro.utils.provenance import git_revision


class CurveConfig(Section):
    dataset: str = "mnist_5k"
    split: str = "train"
    n_valid: PositiveInt = 1000
    seed: int = 0  # the carve's permutation, the training seed and the sample streams' seed
    # train.<name> section -> the epochs after which its generator is scored
    epochs: dict[str, list[PositiveInt]]
    n_samples: list[PositiveInt] = Field(min_length=1)
    chunk_size: PositiveInt = 10_000
    generate_batch: PositiveInt = 1000


def carve(data, n_valid: int, seed: int):
    """(train, valid) subsets of `data`: `n_valid` digits by a seeded permutation, the rest."""
    if n_valid >= len(data):
        raise ReproError(f"table3_curve.n_valid {n_valid} leaves no training digits of the "
                         f"{len(data)} in {data.name} {data.split}; lower it")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[n_valid:]), data.subset(perm[:n_valid])


def errors_by_count(stream, counts: list[int], queries, q_labels, device) -> dict[str, float]:
    """Validation error (%) of 1-NN fitted on the first n references of `stream`, per n."""
    nn, out, pending = streaming(table3.PROTOCOL.evaluator, queries, device), {}, sorted(counts)
    for x, y in stream:
        nn.update(x.to(device), y.to(device))
        while pending and nn.n_seen >= pending[0]:
            out[str(pending.pop(0))] = round(error(nn, q_labels), 3)
    return out


def _train_section(stage: Stage, name: str, last_epoch: int, seed: int) -> TrainStageConfig:
    from repro.config import load_section

    cfg = load_section(TrainStageConfig, f"train.{name}", stage.params)
    # One run at the full rate: each scored epoch is a checkpoint of it (no decay phase).
    return cfg.model_copy(update={"epochs": last_epoch, "decay_epochs": 0, "seeds": [seed],
                                  "shipped": None, "max_steps": None})


def curve(stage: Stage, partial: Path | None = None) -> dict:
    """The curve's record; `partial`: where each finished model's curve is written as it ends."""
    cfg: CurveConfig = stage.section
    d = stage.params.data
    data = load_dataset(cfg.dataset, cfg.split, root=d.root, download=d.download,
                        search=d.search, dry_run=stage.dry_run)
    data = stage.fit(data, 28, 1, "resize")
    train, valid = carve(data, cfg.n_valid, cfg.seed)
    queries, q_labels = flat01(valid.images).to(stage.device), valid.labels.to(stage.device)
    counts = sorted(cfg.n_samples)
    real_counts = sorted({n for n in counts if n < len(train)} | {len(train)})
    bounds = [0] + real_counts
    real_stream = [(flat01(train.images[a:b]), train.labels[a:b]) for a, b in zip(bounds, bounds[1:])]
    out = {"dataset": cfg.dataset, "source": data.source, "n_train": len(train),
           "n_valid": len(valid), "seed": cfg.seed, "n_samples": counts,
           "real": errors_by_count(real_stream, real_counts, queries, q_labels, stage.device),
           "models": {}}
    for name, epochs in cfg.epochs.items():
        section = _train_section(stage, name, max(epochs), cfg.seed)
        out["models"][name] = _model_curve(stage, name, section, train, sorted(set(epochs)),
                                           counts, queries, q_labels, cfg)
        if partial is not None:
            write_json(partial, out)
    return out


def _model_curve(stage: Stage, name: str, section: TrainStageConfig, train, epochs: list[int],
                 counts: list[int], queries, q_labels, cfg: CurveConfig) -> dict:
    points: dict[str, dict] = {}
    clock = {"train": 0.0, "since": time.perf_counter()}
    bar = progress(total=len(epochs), unit="checkpoint", desc=f"table3_curve {name}")

    def scored(epoch: int, trainer: GANTrainer) -> None:
        if epoch + 1 not in epochs:
            return
        clock["train"] += time.perf_counter() - clock["since"]
        ends = chunk_ends(counts, cfg.chunk_size)
        stream = sample_stream(trainer.variant, trainer.G, ends, cfg.seed, cfg.generate_batch,
                                stage.device)
        points[str(epoch + 1)] = {"step": trainer.step, "train_seconds": round(clock["train"], 1),
                                  "err": errors_by_count(stream, counts, queries, q_labels,
                                                         stage.device)}
        bar.update(1)
        bar.write(f"table3_curve {name} epoch {epoch + 1}: {points[str(epoch + 1)]['err']}")
        clock["since"] = time.perf_counter()

    tmp = Path(f"/tmp/table3_curve_{name}_{cfg.seed}.pt")
    tmp.unlink(missing_ok=True)
    trainer = GANTrainer(section, train, stage.device, tmp, on_epoch=scored)
    trainer.run(cfg.seed)
    tmp.unlink(missing_ok=True)
    bar.close()
    return {"variant": section.variant, "batch_size": section.batch_size, "lr": section.lr,
            "steps_per_epoch": trainer.steps_per_epoch,
            "seconds_per_epoch": round(clock["train"] / max(epochs), 2), "epochs": points}


def run(out: Path) -> dict:
    stage = Stage.open("table3_curve", CurveConfig, "table3_curve")
    if stage.dry_run:
        raise ReproError("table3_curve trains real models; set dry_run: false in params.yaml")
    partial = out.with_name(out.name + ".partial")
    result = curve(stage, partial)
    result.update(profile=stage.profile, git=git_revision(), platform=fingerprint(),
                  deviations=stage.deviations(), config=stage.section.model_dump(mode="json"),
                  wall_time_s=round(time.perf_counter() - stage.started, 1))
    write_json(out, result)
    partial.unlink(missing_ok=True)
    return result


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/table3_curve.json"))
    args = ap.parse_args(argv)
    run(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
