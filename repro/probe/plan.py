"""The probe's plan before long work: how many images, fits and samples the run takes, and an
estimated time from a quick measurement on this machine (a feature pass, one classifier fit,
one chunk of samples), so a run sized for a GPU is seen before it starts on a CPU."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from repro.protocols.unit import split_size
from repro.registry import EVALUATORS

# Table 3 sample counts from which a CPU run gets a warning (the paper's 10M column).
PAPER_SAMPLES_WARNING = 1_000_000


def _timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def discriminator(unit: Any, cfg: Any, probed: Any, rows: int, device: torch.device,
                  carved: bool, sample: Any) -> list[str]:
    """Plan lines of a linear-probe table's run on `probed` (and `rows` - 1 baseline rows),
    from the unit's counts (`unit.plan`), timed on `sample`, a few hundred training images
    fitted to the model's input."""
    if unit.plan is None:
        return [f"  ({unit.name} declares no plan counts: no time estimate)"]
    counts = unit.plan(cfg, carved)
    # the measurement runs on real images of the dataset: an SVM on noise features converges
    # several times faster than on real ones, and would promise too short a run
    n_fit = min(counts.draw_size, len(sample.images))
    x = sample.images.float() / 127.5 - 1
    model = probed.to(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        X = torch.cat([model.feature_vector(x[i:i + 256].to(device))
                       for i in range(0, len(x), 256)])
    per_image = (time.perf_counter() - t0) / len(x)
    dim = probed.feature_dim
    make = EVALUATORS.get(unit.evaluator(cfg)).make
    C = sorted(cfg.svm.C_grid)[len(cfg.svm.C_grid) // 2]
    opts = dict(solver=cfg.svm.solver, device=device, **cfg.svm.options())
    t0 = time.perf_counter()
    make(C=C, **opts).fit(X[:n_fit].float(), sample.labels[:n_fit].numpy())
    per_fit = time.perf_counter() - t0
    # the torch solver works on the N x N Gram matrix: time grows with N^2 past the measured N
    fit_s = sum(per_fit * max(1.0, (n / n_fit) ** 2)
                for n in [counts.draw_size] * counts.draw_fits + list(counts.whole))
    total = rows * (counts.images * per_image + fit_s)
    return [f"  images: {counts.sets}, through {rows} row(s) (yours: {dim:,}-d features)",
            f"  fits per row: {counts.fits}",
            f"  estimated time: {_duration(total)} on {device.type} (measured here: "
            f"{1000 * per_image:.2f} ms per image of features, {per_fit:.2f} s per SVM fit of "
            f"{n_fit:,} x {dim:,} at C {C:g}; the baseline row takes about as long)"]


def generator(unit: Any, cfg: Any, G: torch.nn.Module, variant: Any,
              device: torch.device) -> list[str]:
    """Plan lines of a generated-samples table's probe of `G` (Table 3), with a warning for
    paper sizes on a CPU."""
    from repro.train.sampling import generate

    test = split_size(cfg.dataset, cfg.test_split, cfg.max_test)
    train = split_size(cfg.dataset, cfg.train_split, cfg.max_train)
    samples = max(cfg.n_samples.values())
    n = 500
    size, channels = unit.input_shape(cfg)
    dim = size * size * channels  # the classifier reads flattened images
    nn = EVALUATORS.get(unit.evaluator(cfg)).stream(torch.rand(test, dim), device=device)
    x = torch.rand(n, dim)
    per_sample = (_timed(lambda: generate(variant, G.to(device), n, seed=0, device=device,
                                          batch_size=n, uint8=False))
                  + _timed(lambda: nn.update(x.to(device), torch.zeros(n, dtype=torch.int64)))) / n
    total = (samples + train) * per_sample
    marks = ", ".join(f"{k}: {v:,}" for k, v in cfg.n_samples.items())
    lines = [f"  samples: {samples:,} from your G (1-NN scored at {marks}); real row: "
             f"{train:,} training images; {test:,} test images",
             f"  estimated time: {_duration(total)} on {device.type} (measured here: "
             f"{1e6 * per_sample:.0f} us per sample generated and compared)"]
    if device.type == "cpu" and samples >= PAPER_SAMPLES_WARNING:
        lines.append(f"  WARNING: {samples:,} samples is the paper's size, meant for a GPU; on "
                     "this CPU use --profile demo (or smoke) for a run of minutes")
    return lines
