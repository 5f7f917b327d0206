"""GAN training throughput: GANTrainer vs the tutorial loop (repro.bench.reference)."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch

from repro.bench.common import class_images, comparison
from repro.bench.layouts import layer_layouts
from repro.bench.reference import reference_loop
from repro.bench.roofline import count_conv_flops, count_flops, rate, roofline
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


def profile_ours(variant_name: str, data: ImageSet, device: torch.device, batch_size: int,
                 steps: int, fast: dict) -> dict:
    """GANTrainer's step on a throwaway trainer: its FLOPs (the first step, counted) and, on a
    CPU, how much of it is convolution kernels over `steps` profiled steps after that one.

    CPU only for the profile: the profiler's CPU times are the kernels' times there. The
    share bounds what any change outside the kernels can gain: with everything else at zero
    time, a step would take `conv_seconds_per_step`."""
    with _fresh_trainer(variant_name, data, device, batch_size, fast) as (trainer, idx):
        # the counted step is also the profile's warm-up
        flops, conv_flops, _ = count_conv_flops(lambda: trainer._train_step(idx))
        if device.type != "cpu":
            return {"flops": flops}
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            for _ in range(steps):
                trainer._train_step(idx)
            seconds = time.perf_counter() - t
    # self times: each kernel counted once (aten::convolution only dispatches)
    conv_us = sum(e.self_cpu_time_total for e in prof.key_averages() if "convolution" in e.key)
    return {"flops": flops, "conv_flops": conv_flops, "step_seconds": seconds / steps,
            "conv_seconds_per_step": conv_us / 1e6 / steps, "profiled_steps": steps}


def _limit(prof: dict, peak: dict | None, batch_size: int, ref_images_per_s: float) -> dict:
    """The record's `limit`: the convolution share of our step and the ratio it caps."""
    conv_s = prof["conv_seconds_per_step"]
    conv = rate(prof["conv_flops"], conv_s, peak, "conv")
    return {"step_seconds": prof["step_seconds"], "conv_seconds_per_step": conv_s,
            "conv_share_of_step": conv_s / prof["step_seconds"],
            "conv_gflop_per_step": conv["gflop"], "conv_kernels_gflops": conv["gflops"],
            "profiled_steps": prof["profiled_steps"], "profiled_repeats": prof["profiled_repeats"],
            "conv_kernels_fraction_of_peak": conv["fraction_of_peak"],
            # the ratio if everything in our step but its convolutions took no time
            "ratio_ceiling": batch_size / conv_s / ref_images_per_s}


def bench_train(variant_name: str, device: torch.device, batch_size: int, steps: int,
                warmup: int, repeats: int, ref_workers: int, fast: dict,
                peak: dict | None = None, plain: bool = False) -> dict:
    """`plain`: also time our trainer without the fast path (fp32, NCHW), interleaved with the
    others: `ours_plain` and the fast path's speed-up over it (the GPU check asks for it)."""
    spec = MODELS.get(variant_name).spec
    steps = max(warmup, steps // warmup * warmup)  # a multiple of the log interval
    n = batch_size * (warmup + steps + 1)  # one epoch covers the run: no epoch boundary inside
    images, labels = class_images(n, spec.channels, spec.image_size, max(spec.n_classes, 10), seed=1)
    data = ImageSet(images=images, labels=labels, name="bench", split="train",
                    source="generated: class prototypes + noise", real=False)
    ours, ref, profs, plains = [], [], [], []
    for _ in range(repeats):  # interleaved A, B, A, B; medians (noisy shared machines)
        ours.append(ours_loop(variant_name, data, device, batch_size, steps, warmup, fast))
        if plain and fast:
            plains.append(ours_loop(variant_name, data, device, batch_size, steps, warmup, {}))
        ref.append(reference_loop(variant_name, images, labels, device, batch_size, steps,
                                  warmup, num_workers=ref_workers))
        # A few profiled steps are enough for the kernel share; as many as the warm-up keeps
        # the bench short. One profile per repeat, the least disturbed one kept: a single
        # profile on a shared machine once ran 30% slow and put the ceiling below the ratio
        # the timed runs had reached.
        profs.append(profile_ours(variant_name, data, device, batch_size, warmup, fast))
    o = statistics.median(x["images_per_second"] for x in ours)
    r = statistics.median(x["images_per_second"] for x in ref)
    prof = min(profs, key=lambda p: p.get("step_seconds", 0.0))
    prof["profiled_repeats"] = len(profs)
    f_ours = prof["flops"]
    f_ref, _ = count_flops(lambda: reference_loop(variant_name, images, labels, device,
                                                  batch_size, steps=1, warmup=0))
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
    if plains:
        p = statistics.median(x["images_per_second"] for x in plains)
        rec["ours_plain"] = {"name": "GANTrainer without the fast path (fp32, NCHW)", "value": p,
                             "unit": "img/s", "runs": [x["images_per_second"] for x in plains],
                             "fast_path_speedup": o / p}
    if device.type == "cpu":
        rec["limit"] = _limit(prof, peak, batch_size, r)
        # the ratio our FLOP saving alone buys: both loops' kernels at the same speed
        rec["limit"]["flop_ratio"] = f_ref / f_ours
        rec["layouts"] = layer_layouts(variant_name, batch_size, peak)
    return rec
