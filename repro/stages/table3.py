"""Stage: Table 3, MNIST 1-nearest-neighbour classification with generated data.

For each GAN row (a trained conditional generator, one checkpoint per seed) N labelled
samples are generated with uniform random classes and a 1-NN classifier (Euclidean, raw
pixels in [0, 1]) fitted on them classifies the real test images. The samples are streamed
in chunks: the 50k-sample result is the state of the same stream after its first 50k
samples, so the 10M run costs one pass and never holds more than one chunk. "Real Data"
fits 1-NN on real training images instead.

Each finished row (Real Data, each GAN row with all its seeds) is kept in
`<metrics>.partial.json` beside the metrics file (not a declared output); a rerun with the same
config and inputs reuses those rows (redrawing Fig. 9 from the first dcgan checkpoint if that
row is reused), and the file is removed once the metrics file is written (repro.protocols.rows).

    python -m repro.stages.table3 --checkpoints results/checkpoints \
        --metrics results/metrics/table3_mnist_nn.json \
        --figure results/figures/fig9_mnist_cond.png --provenance results/provenance
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from pydantic import Field, PositiveInt

from repro.config import Section
from repro.data.base import to_float
from repro.data.fit import Fit
from repro.data.loading import load_dataset
from repro.errors import ReproError, cli_errors
from repro.eval.nearest import StreamingNN
from repro.models.checkpoint import build_from_checkpoint
from repro.published.protocol import CHECKPOINT, REAL, TABLE3, TABLE3_SAMPLES, comparable, diff_lines
from repro.registry import EVALUATORS
from repro.stages.common import Stage, metric_cell, not_run_cell, stage_main
from repro.protocols.rows import FinishedRows, fingerprint, stage_key
from repro.train.sampling import generate, save_grid
from repro.utils.io import read_json
from repro.utils.progress import progress

P = TABLE3  # the paper's protocol of this table (repro.published.protocol): the defaults below
# The paper's sample counts, by the column label used in the cell ids.
PAPER_SAMPLES = TABLE3_SAMPLES
_GENERATORS = {r: row for r, row in P.rows.items() if row.kind == CHECKPOINT}


class Table3Config(Section):
    dataset: str = P.paper("dataset")
    train_split: str = "train"
    test_split: str = "test"
    max_train: PositiveInt | None = None  # real training images for the "Real Data" row
    seed: int = 0  # which real images a max_train / max_test subset takes
    max_test: PositiveInt | None = None
    # row id in the published registry -> train.<name> section whose checkpoints it uses
    models: dict[str, str] = Field(default_factory=lambda: {
        r: row.source for r, row in _GENERATORS.items()})
    # row id -> the variant its checkpoints must hold (a checkpoint of another variant put in
    # the row's folder is refused, not scored as that row)
    variants: dict[str, str] = Field(default_factory=lambda: {
        r: row.variant for r, row in _GENERATORS.items()})
    # column label -> number of generated samples (the paper: 50k -> 50,000, 10m -> 10,000,000)
    n_samples: dict[str, PositiveInt] = Field(default_factory=lambda: dict(PAPER_SAMPLES))
    chunk_size: PositiveInt = 50_000
    generate_batch: PositiveInt = 1000
    grid_per_class: PositiveInt = 10
    # How images of another size or channel count are fitted to the protocol's 28x28 grey
    # digits: "resize" (bilinear, RGB -> luma) or "pad" (zero padding, only enlarges); either
    # is a deviation named on every cell (repro.data.fit).
    fit: Fit = "resize"


def _flat01(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) -> float (N, 784) in [0, 1]."""
    return to_float(images, "sigmoid").flatten(1)


def chunk_ends(marks: list[int], chunk: int) -> list[int]:
    """Chunk boundaries up to max(marks): every `chunk` samples and at every mark, so each
    mark is an exact prefix of the stream."""
    return sorted(set(range(chunk, max(marks), chunk)) | set(marks))


def _sample_stream(variant, G, ends: list[int], seed: int, batch: int,
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


def _nn(queries: torch.Tensor, device: torch.device) -> StreamingNN:
    """The protocol's evaluator (a registered name) fitted on a stream of reference chunks."""
    evaluator = EVALUATORS.get(P.evaluator)
    if evaluator.stream is None:
        raise ReproError(f"evaluator {evaluator.name!r} cannot be fitted on a stream of samples; "
                         "Table 3 needs one that can (nn1)")
    return evaluator.stream(queries, device=device)


def _error(nn: StreamingNN, labels: torch.Tensor) -> float:
    return 100.0 * (nn.predict().to(labels.device) != labels).float().mean().item()


def load_generator(path: Path, expect_variant: str, device: torch.device):
    """A row's checkpoint -> (variant, G, ckpt), refused unless it holds `expect_variant` and
    that variant is a conditional 28x28 generator (what the 1-NN protocol samples)."""
    variant, G, _, ckpt = build_from_checkpoint(path, expect_variant, device)
    if not variant.spec.n_classes or variant.spec.image_size != 28 or variant.spec.channels != 1:
        raise ReproError(f"{path} holds {variant.spec.name}, not a conditional 28x28 "
                         "MNIST generator; fix table3.models / table3.variants in the profile")
    return variant, G, ckpt


def effective_protocol(stage: Stage, cfg: Table3Config, *, real: bool, n_train: int,
                       n_test: int) -> dict:
    """The run's value of every protocol field its rows share (repro.published.protocol);
    rows add their sample counts and checkpoint's facts."""
    return {"real_data": real, "dry_run": stage.dry_run,
            "preprocessing": list(stage.data_deviations), "dataset": cfg.dataset,
            "n_train": n_train, "n_test": n_test}


def run(checkpoints: Path, metrics_path: Path, figure: Path, provenance_dir: Path) -> None:
    table3(Stage.open("table3", Table3Config, "table3"), checkpoints, metrics_path, figure,
           provenance_dir)


def table3(stage: Stage, checkpoints: Path | None, metrics_path: Path, figure: Path,
           provenance_dir: Path, generators: dict[str, tuple[Path, Callable]] | None = None,
           cell_prefix: str = "table3") -> None:
    """`generators`: row -> (weights file, a loader returning (variant, G, facts)), in place of
    the section's checkpoint rows (repro.probe); `cell_prefix` names the cells."""
    cfg: Table3Config = stage.section
    if stage.dry_run:
        cfg = cfg.model_copy(update={"n_samples": {k: min(v, 2_000) for k, v in cfg.n_samples.items()},
                                     "chunk_size": 1_000})
    unknown = set(cfg.n_samples) - set(PAPER_SAMPLES)
    if unknown:
        raise ReproError(f"table3.n_samples has unknown column(s) {sorted(unknown)}; "
                         f"valid names: {', '.join(PAPER_SAMPLES)}")
    d = stage.params.data
    load = dict(root=d.root, download=d.download, search=d.search, dry_run=stage.dry_run)
    test = load_dataset(cfg.dataset, cfg.test_split, max_images=cfg.max_test, seed=cfg.seed, **load)
    train = load_dataset(cfg.dataset, cfg.train_split, max_images=cfg.max_train, seed=cfg.seed, **load)
    # The 1-NN protocol compares 28x28 grey digits.
    test = stage.fit(test, 28, 1, cfg.fit)
    train = stage.fit(train, 28, 1, cfg.fit)
    queries = _flat01(test.images).to(stage.device)  # (Q, 784)
    q_labels = test.labels.to(stage.device)
    data_real = test.real and train.real and not stage.dry_run
    base_protocol = stage.protocol(dataset=cfg.dataset, test_source=test.source,
                                   n_test=len(test), n_train=len(train), train_source=train.source,
                                   evaluator=EVALUATORS.get(P.evaluator).label)
    effective = effective_protocol(stage, cfg, real=test.real and train.real,
                                   n_train=len(train), n_test=len(test))
    deviations = stage.deviations()
    if not data_real:
        deviations.append(f"not real data: {cfg.dataset} ({test.source})")

    def judged(row: str, kind: str, col: str, moved: list[dict] = (), **facts) -> dict:
        diff = P.diff(kind, f"err@{col}", {**effective, **facts}) + list(moved)
        published = row in P.rows and P.rows[row].published is not None
        return {"comparable": comparable(published, diff), "protocol_diff": diff,
                "deviations": deviations + diff_lines(diff)}
    metrics: dict[str, dict] = {}
    timings: dict[str, float] = {}

    done = FinishedRows(metrics_path, stage_key(stage, cfg, fingerprint(
        train.images, train.labels, test.images, test.labels)), "table3")

    def real_row() -> dict:  # Real Data row: 1-NN on real training images
        t0 = time.perf_counter()
        nn = _nn(queries, stage.device)
        nn.update(_flat01(train.images).to(stage.device), train.labels.to(stage.device))
        return {"error": _error(nn, q_labels), "seconds": round(time.perf_counter() - t0, 2)}

    rec = done.run("real", "", real_row)
    metrics[f"{cell_prefix}/real/err@50k"] = metric_cell(
        [rec["error"]], protocol={**base_protocol, "n_samples": len(train),
                                  "representation": P.rows["real"].what},
        compares_to="table3/real/err@50k", **judged("real", REAL, "50k", n_samples=len(train)))
    timings["real"] = rec["seconds"]

    for row, (weights, load) in (generators or {}).items():
        rec = done.run(row, fingerprint(weights), lambda row=row, load=load: _generator_row(
            row, [weights], cfg, stage, queries, q_labels, figure, load=lambda _p: load()))
        for col, values in rec["runs"].items():
            n = cfg.n_samples[col]
            # how the loader fitted this generator's output (repro.probe) is its row's own
            fitted = list(rec["ckpt"]["deviations"])
            j = judged(row, CHECKPOINT, col, n_samples=n, checkpoint_dry_run=False,
                       preprocessing=effective["preprocessing"] + fitted)
            metrics[f"{cell_prefix}/{row}/err@{col}"] = metric_cell(
                values, seeds=rec["seeds"], comparable=False, compares_to=None,
                protocol={**base_protocol, "n_samples": n, "generator": row,
                          "generator_data": rec["ckpt"].get("data_source")},
                deviations=fitted + j["deviations"], protocol_diff=j["protocol_diff"])
        timings[row] = rec["seconds"]
    for row, train_name in ({} if generators is not None else cfg.models).items():
        if row not in cfg.variants:
            raise ReproError(f"table3.variants has no entry for row {row!r}; add the variant its "
                             f"checkpoints in {train_name}/ must hold")
        ckpt_dir = checkpoints / train_name
        paths = sorted(ckpt_dir.glob("seed*.pt"))
        if not paths and (ckpt_dir / "MISSING.json").is_file():  # not run, with the reason
            reason = read_json(ckpt_dir / "MISSING.json")["reason"]
            for col in cfg.n_samples:
                metrics[f"table3/{row}/err@{col}"] = not_run_cell(
                    reason, compares_to=f"table3/{row}/err@{col}",
                    protocol={**base_protocol, "generator": train_name})
            print(f"table3: row {row} not run: {reason}")
            continue
        if not paths:
            raise ReproError(f"no checkpoints in {ckpt_dir}; run the train@{train_name} stage first "
                             f"(dvc repro train@{train_name})")
        rec = done.run(row, fingerprint(*paths), lambda row=row, paths=paths: _generator_row(
            row, paths, cfg, stage, queries, q_labels, figure))
        if row == "dcgan" and row in done.reused:  # the figure is an output: draw it again
            variant, G, ckpt = load_generator(paths[0], cfg.variants[row], stage.device)
            _collage(variant, G, cfg, stage.device, figure, ckpt)
        runs, seeds, ckpt = rec["runs"], rec["seeds"], rec["ckpt"]
        for col, values in runs.items():
            n = cfg.n_samples[col]
            j = judged(row, CHECKPOINT, col, n_samples=n,
                       checkpoint_dry_run=bool(ckpt.get("dry_run")),
                       moved=P.source_diff(row, train_name, cfg.variants[row]))
            metrics[f"table3/{row}/err@{col}"] = metric_cell(
                values, seeds=seeds, comparable=j["comparable"],
                protocol={**base_protocol, "n_samples": n, "generator": train_name,
                          "generator_data": ckpt.get("data_source")},
                deviations=j["deviations"] + list(ckpt.get("deviations", [])),
                protocol_diff=j["protocol_diff"],
                compares_to=f"table3/{row}/err@{col}")
        timings[row] = rec["seconds"]
    stage.write_metrics(metrics_path, metrics)
    done.finish()
    stage.write_provenance(provenance_dir, seconds_per_row=timings, reused_rows=done.reused,
                           seeds=sorted({s for c in metrics.values() for s in c["seeds"]}))


def _generator_row(row: str, paths: list[Path], cfg: Table3Config, stage: Stage,
                   queries: torch.Tensor, q_labels: torch.Tensor, figure: Path,
                   load: Callable | None = None) -> dict:
    """1-NN test errors of every seed's sample stream, per column (a JSON record); `load`
    (path -> (variant, G, ckpt)) defaults to the row's checked checkpoint loader."""
    runs: dict[str, list[float]] = {col: [] for col in cfg.n_samples}
    seeds: list[int] = []
    t0 = time.perf_counter()
    for path in paths:
        variant, G, ckpt = (load(path) if load else
                            load_generator(path, cfg.variants[row], stage.device))
        G = G.to(stage.device)
        seeds.append(ckpt["seed"])
        marks = sorted(cfg.n_samples.items(), key=lambda kv: kv[1])
        total = marks[-1][1]
        nn = _nn(queries, stage.device)
        bar = progress(total=total, unit="sample", desc=f"table3 {row} seed {ckpt['seed']}")
        pending = list(marks)
        ends = chunk_ends([n for _, n in marks], cfg.chunk_size)
        for x, y in _sample_stream(variant, G, ends, ckpt["seed"], cfg.generate_batch,
                                   stage.device):
            nn.update(x, y)
            bar.update(len(x))
            while pending and nn.n_seen >= pending[0][1]:
                runs[pending.pop(0)[0]].append(_error(nn, q_labels))
        bar.close()
        if row == "dcgan" and path == paths[0]:
            _collage(variant, G, cfg, stage.device, figure, ckpt)
    # the cells read these of the (last) checkpoint
    facts = {k: ckpt.get(k) for k in ("data_source", "dry_run")}
    facts["deviations"] = list(ckpt.get("deviations", []))
    return {"runs": runs, "seeds": seeds, "ckpt": facts,
            "seconds": round(time.perf_counter() - t0, 2)}


def _collage(variant, G, cfg: Table3Config, device, figure: Path, ckpt: dict) -> None:
    """Fig. 9's MNIST collage: one column per class."""
    k = variant.spec.n_classes
    labels = torch.arange(k, device=device).repeat(cfg.grid_per_class)
    images, _ = generate(variant, G, len(labels), seed=ckpt["seed"] + 9, device=device,
                         labels=labels, batch_size=len(labels))
    save_grid(images, figure, nrow=k,
              title=f"Fig. 9 (MNIST, class-conditional DCGAN) — trained on {ckpt.get('data_source')}")


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, ['checkpoints', 'metrics', 'figure', 'provenance'], argv)


if __name__ == "__main__":
    main()
