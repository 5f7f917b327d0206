"""GAN training throughput: GANTrainer vs the tutorial loop (repro.bench.reference)."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from repro.bench.common import class_images, comparison
from repro.bench.reference import reference_loop
from repro.bench.roofline import count_flops, roofline
from repro.data.base import ImageSet
from repro.registry import MODELS
from repro.train.config import TrainConfig
from repro.train.trainer import GANTrainer


def ours_loop(variant_name: str, data: ImageSet, device: torch.device, batch_size: int,
              steps: int, warmup: int, fast: dict) -> dict:
    """images/s of GANTrainer over its steps warmup+1 .. warmup+steps.

    The trainer logs (one host sync) every `warmup` steps; the clock runs from the first log
    to the last, so setup, warm-up and the final checkpoint write are outside it."""
    cfg = TrainConfig(variant=variant_name, dataset="bench", epochs=1, batch_size=batch_size,
                      max_steps=warmup + steps, log_every=warmup, checkpoint_every=10**9,
                      **fast)
    marks: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(cfg, data, device, Path(tmp) / "bench.pt",
                             on_log=lambda m: marks.__setitem__(int(m["step"]), time.perf_counter()))
        result = trainer.run(seed=0)
    seconds = marks[warmup + steps] - marks[warmup]
    return {"images_per_second": steps * batch_size / seconds, "seconds": seconds,
            "final_loss_d": result.final_loss_d, "final_loss_g": result.final_loss_g}


@contextlib.contextmanager
def _fresh_trainer(variant_name: str, data: ImageSet, device: torch.device, batch_size: int,
                   fast: dict) -> Iterator[tuple[GANTrainer, torch.Tensor]]:
    """A throwaway trainer in its seed-0 state and the index of its first batch."""
    cfg = TrainConfig(variant=variant_name, dataset="bench", epochs=1, batch_size=batch_size,
                      max_steps=1, checkpoint_every=10**9, **fast)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(cfg, data, device, Path(tmp) / "bench.pt")
        trainer._fresh_state(0)
        yield trainer, torch.arange(batch_size, device=device)


def step_flops(variant_name: str, data: ImageSet, images: torch.Tensor, labels: torch.Tensor,
               device: torch.device, batch_size: int, fast: dict) -> tuple[int, int]:
    """FLOPs of one training step: (GANTrainer's, the tutorial loop's), counted on the steps
    themselves (a throwaway trainer; a 1-step reference loop)."""
    with _fresh_trainer(variant_name, data, device, batch_size, fast) as (trainer, idx):
        ours, _ = count_flops(lambda: trainer._train_step(idx))
    ref, _ = count_flops(lambda: reference_loop(variant_name, images, labels, device, batch_size,
                                                steps=1, warmup=0))
    return ours, ref


def convolution_share(variant_name: str, data: ImageSet, device: torch.device,
                      batch_size: int, steps: int, fast: dict) -> dict | None:
    """How much of GANTrainer's step is convolution kernels (CPU only: the profiler's CPU
    times are the kernels' times there), over `steps` profiled steps after one warm-up.

    The share bounds what any change outside the kernels can gain: with everything else at
    zero time, a step would take `conv_seconds_per_step`."""
    if device.type != "cpu":
        return None
    from torch.profiler import ProfilerActivity, profile

    with _fresh_trainer(variant_name, data, device, batch_size, fast) as (trainer, idx):
        with FlopCounterMode(display=False) as fc:
            trainer._train_step(idx)  # also the warm-up
        conv_flops = sum(n for op, n in fc.get_flop_counts()["Global"].items() if "convolution" in str(op))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            for _ in range(steps):
                trainer._train_step(idx)
            seconds = time.perf_counter() - t
    # self times: each kernel counted once (aten::convolution only dispatches)
    conv_us = sum(e.self_cpu_time_total for e in prof.key_averages() if "convolution" in e.key)
    conv_s = conv_us / 1e6 / steps
    return {"step_seconds": seconds / steps, "conv_seconds_per_step": conv_s,
            "conv_share_of_step": conv_s / (seconds / steps), "conv_gflop_per_step": conv_flops / 1e9,
            "conv_kernels_gflops": conv_flops / conv_s / 1e9, "profiled_steps": steps}


def bench_train(variant_name: str, device: torch.device, batch_size: int, steps: int,
                warmup: int, repeats: int, ref_workers: int, fast: dict,
                peak: dict | None = None) -> dict:
    spec = MODELS.get(variant_name).spec
    steps = max(warmup, steps // warmup * warmup)  # a multiple of the log interval
    n = batch_size * (warmup + steps + 1)  # one epoch covers the run: no epoch boundary inside
    images, labels = class_images(n, spec.channels, spec.image_size, max(spec.n_classes, 10), seed=1)
    data = ImageSet(images=images, labels=labels, name="bench", split="train",
                    source="generated: class prototypes + noise", real=False)
    ours, ref = [], []
    for _ in range(repeats):  # interleaved A, B, A, B; medians (noisy shared machines)
        ours.append(ours_loop(variant_name, data, device, batch_size, steps, warmup, fast))
        ref.append(reference_loop(variant_name, images, labels, device, batch_size, steps,
                                  warmup, num_workers=ref_workers))
    o = statistics.median(x["images_per_second"] for x in ours)
    r = statistics.median(x["images_per_second"] for x in ref)
    f_ours, f_ref = step_flops(variant_name, data, images, labels, device, batch_size, fast)
    rec = comparison(
        {"name": "GANTrainer", "value": o, "unit": "img/s",
         "runs": [x["images_per_second"] for x in ours], "config": fast,
         "flop_per_image": f_ours / batch_size},
        {"name": f"tutorial loop (DataLoader, num_workers={ref_workers}, per-step .item())",
         "value": r, "unit": "img/s", "runs": [x["images_per_second"] for x in ref],
         "flop_per_image": f_ref / batch_size},
        "train", device, higher_is_better=True,
        sizes={"variant": variant_name, "batch_size": batch_size, "timed_steps": steps,
               "warmup_steps": warmup, "repeats": repeats, "image_size": spec.image_size},
        what=f"GAN training throughput, {variant_name} (D and G updated every step); "
             "median of interleaved repeats")
    # seconds per image: the roofline's rates are FLOPs per image x images per second
    rec["roofline"] = roofline(f_ours / batch_size, 1 / o, f_ref / batch_size, 1 / r, peak, "conv")
    share = convolution_share(variant_name, data, device, batch_size, warmup, fast)
    if share is not None:
        share.update({
            "conv_kernels_fraction_of_peak":
                share["conv_kernels_gflops"] / peak["conv_fp32_gflops"] if peak else None,
            # the ratio if everything in our step but its convolutions took no time
            "ratio_ceiling": batch_size / share["conv_seconds_per_step"] / r,
        })
        rec["limit"] = share
    return rec
