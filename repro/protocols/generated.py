"""The generated-samples scorer (Table 3): a class-conditional generator's labelled samples are
streamed into the table's evaluator (a nearest-neighbour classifier that can be fitted on a
stream, e.g. nn1), which then classifies the real test images; each column is the test error
after that column's number of samples (`n_samples`, column label -> count)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import torch

from repro.data.base import to_float
from repro.errors import ReproError
from repro.eval.nearest import StreamingNN
from repro.models.checkpoint import build_from_checkpoint
from repro.protocols.probing import Source
from repro.protocols.runner import Run
from repro.protocols.unit import Scorer
from repro.published.protocol import CHECKPOINT
from repro.registry import EVALUATORS
from repro.context import metric_cell
from repro.train.sampling import generate
from repro.utils.progress import progress


def flat01(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) -> float (N, H * W) in [0, 1]."""
    return to_float(images, "sigmoid").flatten(1)


def chunk_ends(marks: list[int], chunk: int) -> list[int]:
    """Chunk boundaries up to max(marks): every `chunk` samples and at every mark, so each
    mark is an exact prefix of the stream."""
    return sorted(set(range(chunk, max(marks), chunk)) | set(marks))


def sample_stream(variant, G, ends: list[int], seed: int, batch: int,
                   device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Chunks of (flattened float samples in [0, 1], labels), seeded per chunk."""
    start = 0
    for k, end in enumerate(ends):
        m, start = end - start, end
        x, y = generate(variant, G, m, seed=seed * 100_003 + k, device=device,
                        batch_size=batch, uint8=False)
        if variant.spec.pixel_range == "tanh":  # compare in [0, 1] like the real pixels
            x = (x + 1) / 2
        yield x.flatten(1), y


def streaming(name: str, queries: torch.Tensor, device: torch.device) -> StreamingNN:
    """The registered evaluator `name`, fitted on a stream of reference chunks."""
    evaluator = EVALUATORS.get(name)
    if evaluator.stream is None:
        raise ReproError(f"evaluator {evaluator.name!r} cannot be fitted on a stream of samples; "
                         "a generated-samples table needs one that can (nn1)")
    return evaluator.stream(queries, device=device)


def error(nn: StreamingNN, labels: torch.Tensor) -> float:
    return 100.0 * (nn.predict().to(labels.device) != labels).float().mean().item()


def load_generator(path: Path, expect_variant: str, device: torch.device):
    """A row's checkpoint -> (variant, G, ckpt), refused unless it holds `expect_variant` and
    that variant is a conditional 28x28 grey generator (what the 1-NN protocol samples)."""
    variant, G, _, ckpt = build_from_checkpoint(path, expect_variant, device)
    if not variant.spec.n_classes or variant.spec.image_size != 28 or variant.spec.channels != 1:
        raise ReproError(f"{path} holds {variant.spec.name}, not a conditional 28x28 "
                         "MNIST generator; fix the table's models / variants in the profile")
    return variant, G, ckpt


def generator(src: Source, device: torch.device):
    """(variant, G, checkpoint facts) of a source: its checkpoint, or the generator a user
    gave `python -m repro.probe` (`src.module`)."""
    return src.module if src.module is not None else load_generator(src.path, src.expect_variant,
                                                                   device)


def _score(run: Run, src: Source, cache: Path) -> dict:
    """One generator's test error at every column's sample count (a JSON record)."""
    cfg, stage = run.cfg, run.stage
    t0 = time.perf_counter()
    variant, G, ckpt = generator(src, stage.device)
    G = G.to(stage.device)
    queries = flat01(run.data.images["test"]).to(stage.device)
    labels = torch.as_tensor(run.data.labels["test"]).to(stage.device)
    marks = sorted(cfg.n_samples.items(), key=lambda kv: kv[1])
    errors: dict[str, float] = {}
    nn = streaming(run.unit.evaluator(cfg), queries, stage.device)
    bar = progress(total=marks[-1][1], unit="sample",
                   desc=f"{run.unit.name} {src.row} seed {ckpt['seed']}")
    pending = list(marks)
    for x, y in sample_stream(variant, G, chunk_ends([n for _, n in marks], cfg.chunk_size),
                               ckpt["seed"], cfg.generate_batch, stage.device):
        nn.update(x, y)
        bar.update(len(x))
        while pending and nn.n_seen >= pending[0][1]:
            errors[pending.pop(0)[0]] = error(nn, labels)
    bar.close()
    return {"errors": {col: errors[col] for col in cfg.n_samples}, "seed": ckpt["seed"],
            # what the cells read of the checkpoint (the rest holds tensors)
            "data_source": ckpt.get("data_source"), "dry_run": bool(ckpt.get("dry_run")),
            "deviations": list(ckpt.get("deviations", [])),
            # how a user's generator's output was fitted (repro.probe): this row's preprocessing
            "preprocessing": list(ckpt.get("preprocessing", [])),
            "seconds": round(time.perf_counter() - t0, 2)}


def _cells(run: Run, row: str, recs: list[tuple[Source, dict]]) -> dict[str, dict]:
    """A row's cells, one per column, all its sources (one per seed) pooled."""
    src, results = recs[0][0], [r for _, r in recs]
    declared = run.unit.protocol.row(row, src.train_name)
    moved = run.unit.protocol.source_diff(row, src.train_name, src.expect_variant)
    ckpt_devs = list(dict.fromkeys(d for r in results for d in r["deviations"]))
    out = {}
    for label, n in run.cfg.n_samples.items():
        col = f"err@{label}"
        fitted = list(dict.fromkeys(d for r in results for d in r["preprocessing"]))
        own = {"preprocessing": run.effective["preprocessing"] + fitted} if fitted else {}
        j = run.judge(CHECKPOINT, declared.published is not None, col, moved, n_samples=n,
                      checkpoint_dry_run=any(r["dry_run"] for r in results), **own)
        out[f"{run.prefix}/{row}/{col}"] = metric_cell(
            [r["errors"][label] for r in results], seeds=[r["seed"] for r in results],
            comparable=j["comparable"],
            compares_to=f"{run.unit.name}/{declared.published}/{col}" if declared.published
            else None,
            protocol={**run.base, "n_samples": n, "generator": src.train_name,
                      "generator_data": results[-1]["data_source"]},
            deviations=run.deviations + j["lines"] + ckpt_devs, protocol_diff=j["protocol_diff"])
    return out


GENERATED_NN = Scorer("nearest neighbour on generated samples",
                      compute=lambda run, src, cache: _score(run, src, cache),
                      cells=lambda run, row, recs: _cells(run, row, recs))
