"""One GAN trainer for every variant, conditional or not.

Design choices (why):
- The whole training split lives on the training device as uint8 and minibatches are taken
  by index from a seeded permutation: no DataLoader, no worker processes, no per-step host
  copies, and the batch order depends only on (seed, epoch), so a resumed run sees exactly
  the batches an uninterrupted one would.
- The z noise comes from a private torch.Generator whose state is checkpointed, for the same
  reason.
- Losses are accumulated on the device and read back only every `log_every` steps (one host
  sync per log line instead of one per step).
- Checkpoints are written atomically and carry the full config, git revision, seed, step,
  optimiser and RNG states; `resume=True` continues a killed run to bit-identical weights.

Fast-path switches (TrainConfig, all off by default; repro.bench.common.train_fast_path names
the ones benchmarked): `bf16` (autocast on CUDA; the BCE losses are taken in float32),
`channels_last` (NHWC weights and inputs: oneDNN's NHWC kernels on a CPU, tensor cores on a
GPU), `compile`
(torch.compile of the G and D used for training; checkpoints hold the plain modules). Nothing
in the step reads a value back to the host (losses are summed on the device), so the GPU
queues steps ahead of Python.

Determinism: on CPU a run is bit-identical for the same (seed, config, torch build, thread
count), and so is a resumed run. On CUDA the batch order, z noise and initial weights are
still identical (they come from seeded generators), but the weights after training are not
bit-identical between runs: cuDNN may pick different convolution algorithms and its
transposed-convolution backward and `index_add`-style reductions use atomics, so float sums
land in a varying order. `torch.backends.cudnn.deterministic = True` plus
`torch.use_deterministic_algorithms(True)` (and CUBLAS_WORKSPACE_CONFIG=:4096:8) remove most
of this at a speed cost; bf16, channels_last and compile change the arithmetic itself, so a
run with them differs from one without them beyond rounding, and a DDP run (see
repro.train.distributed) differs from a 1-process run by float rounding of the gradient
all-reduce (with `sync_batchnorm`), or by its per-rank BN statistics (without).

Before a long run (>= ESTIMATE_MIN_STEPS steps to go) the trainer times a few of its own
first steps and prints "estimated wall time ..." for the run and for all its seeds.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from repro.data.base import ImageSet, to_float
from repro.errors import ReproError
from repro.models.checkpoint import load_checkpoint, save_checkpoint
from repro.registry import MODELS
from repro.train import distributed
from repro.train.config import TrainConfig
from repro.utils.progress import progress
from repro.utils.provenance import git_revision
from repro.utils.seed import generator, seed_everything

CHECKPOINT_FORMAT = 1
# Wall-time estimate: skip ESTIMATE_WARM steps (allocator, cuDNN autotuning, compilation), time
# the next ESTIMATE_STEPS, only when at least ESTIMATE_MIN_STEPS remain.
ESTIMATE_MIN_STEPS = 300
ESTIMATE_WARM = 5
ESTIMATE_STEPS = 20


@dataclass
class RunResult:
    checkpoint: Path
    steps: int
    seconds: float
    images_per_second: float
    final_loss_d: float
    final_loss_g: float


def _epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def _same_config(saved: dict[str, Any], now: TrainConfig) -> bool:
    """Equal configs; a key newer than the checkpoint counts as equal while it has its default."""
    cur = now.model_dump(mode="json")
    defaults = {k: f.get_default(call_default_factory=True) for k, f in type(now).model_fields.items()}
    missing = set(cur) - set(saved)
    return (all(saved.get(k) == v for k, v in cur.items() if k not in missing)
            and set(saved) <= set(cur) and all(cur[k] == defaults[k] for k in missing))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fmt_seconds(s: float) -> str:
    h, rem = divmod(int(round(s)), 3600)
    return f"{h}h{rem // 60:02d}m{rem % 60:02d}s" if h else f"{rem // 60}m{rem % 60:02d}s"


class _NoBar:
    """Progress bar stand-in for ranks other than 0."""

    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...
    def write(self, s: str, file: Any = None) -> None: ...


def _steps_per_epoch(n: int, batch_size: int) -> int:
    # Incomplete last batches are dropped (as the authors' iterators did), so every step sees
    # a full batch and BN statistics are comparable across steps.
    return n // batch_size


class GANTrainer:
    def __init__(self, cfg: TrainConfig, data: ImageSet, device: torch.device,
                 checkpoint: Path, extra: dict[str, Any] | None = None,
                 on_log: Callable[[dict[str, float]], None] | None = None,
                 on_epoch: Callable[[int, "GANTrainer"], None] | None = None):
        self.dist = distributed.current()
        if self.dist.enabled:
            if cfg.batch_size % self.dist.world_size:
                raise ReproError(f"batch_size {cfg.batch_size} is not divisible by the "
                                 f"{self.dist.world_size} processes; choose a multiple")
            if device.type == "cuda":
                device = torch.device("cuda", self.dist.local_rank)
        self.local_batch = cfg.batch_size // self.dist.world_size
        self.cfg, self.device, self.checkpoint = cfg, device, Path(checkpoint)
        self.variant = MODELS.get(cfg.variant)
        spec = self.variant.spec
        self.extra = extra or {}
        self.on_log, self.on_epoch = on_log, on_epoch
        if spec.n_classes and data.labels is None:
            raise ReproError(f"variant {cfg.variant!r} is class-conditional but dataset "
                             f"{data.name!r} has no labels; choose a labelled dataset")
        data = data.resized(spec.image_size, spec.channels)
        self.data_source = data.source
        if len(data) < cfg.batch_size:
            raise ReproError(f"{data.name} {data.split} has {len(data)} images, fewer than "
                             f"batch_size {cfg.batch_size}; lower batch_size or add data")
        self.images = data.images.to(device)  # (N, C, H, W) uint8
        self.labels = data.labels.to(device) if spec.n_classes else None  # (N,)
        self.n = len(data)
        self.steps_per_epoch = _steps_per_epoch(self.n, cfg.batch_size)
        total = self.steps_per_epoch * cfg.total_epochs
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total

    # -- state ---------------------------------------------------------------------------
    def _fresh_state(self, seed: int) -> None:
        seed_everything(seed)
        self.G = self.variant.build_generator().to(self.device)
        self.D = self.variant.build_discriminator().to(self.device)
        self._prepare_models()
        betas = (self.cfg.beta1, self.cfg.beta2)
        wd = self.cfg.weight_decay
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr, betas=betas, weight_decay=wd)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr, betas=betas, weight_decay=wd)
        self.noise = generator(seed + 1, self.device)
        self.step = 0
        self.seed = seed
        self.estimated_seconds: float | None = None

    def _prepare_models(self) -> None:
        """The modules the training step calls: self.G / self.D, or DDP / compiled wrappers of
        them (sharing their parameters, so checkpoints always hold the plain modules)."""
        cfg = self.cfg
        if cfg.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if self.dist.enabled and cfg.sync_batchnorm:
            distributed.convert_sync_batchnorm(self.G)
            distributed.convert_sync_batchnorm(self.D)
        G, D = self.G, self.D
        self._d_ddp = None
        if self.dist.enabled:
            G = distributed.wrap_ddp(G, self.device)
            D = self._d_ddp = distributed.wrap_ddp(D, self.device)
        if cfg.compile:
            G, D = torch.compile(G), torch.compile(D)
        self._G_step, self._D_step = G, D
        self._g_params = [p for p in self.G.parameters() if p.requires_grad]

    def state_dict(self, complete: bool) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "variant": self.cfg.variant,
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "config": self.cfg.model_dump(mode="json"),
            "git": git_revision(),
            "seed": self.seed,
            "step": self.step,
            "total_steps": self.total_steps,
            "complete": complete,
            "data_source": self.data_source,
            "n_train": self.n,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "noise_rng": self.noise.get_state(),
            "cpu_rng": torch.get_rng_state(),
            **self.extra,
        }

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        if ckpt.get("variant") != self.cfg.variant:
            raise ReproError(f"{self.checkpoint} holds variant {ckpt.get('variant')!r}, not "
                             f"{self.cfg.variant!r}; delete it or point to the right file")
        if not _same_config(ckpt.get("config") or {}, self.cfg):
            raise ReproError(f"{self.checkpoint} was written with another config; delete it "
                             "to start afresh, or restore the config it was made with")
        self.G.load_state_dict(ckpt["generator"])
        self.D.load_state_dict(ckpt["discriminator"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.noise.set_state(ckpt["noise_rng"].to(self.noise.get_state().device))
        torch.set_rng_state(ckpt["cpu_rng"].cpu())  # map_location put it on self.device
        self.step = ckpt["step"]

    def save(self, complete: bool = False) -> None:
        if self.dist.is_main:  # rank 0 alone writes; all ranks hold the same weights
            save_checkpoint(self.state_dict(complete), self.checkpoint)

    # -- training ------------------------------------------------------------------------
    def _bce(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))

    def _train_step(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on the global batch `idx` (this rank's shard of it under DDP)."""
        cfg, spec = self.cfg, self.variant.spec
        b = idx.shape[0]
        # Every rank draws the noise of the whole global batch from the same generator and
        # keeps its rows, so K ranks see exactly the 1-process inputs.
        z = self.variant.sample_z(b, generator=self.noise, device=self.device)  # (B, z_dim)
        y_fake = (torch.randint(0, spec.n_classes, (b,), generator=self.noise, device=self.device)
                  if spec.n_classes else None)
        if self.dist.enabled:
            lo, hi = self.dist.rank * self.local_batch, (self.dist.rank + 1) * self.local_batch
            idx, z = idx[lo:hi], z[lo:hi]
            y_fake = y_fake[lo:hi] if y_fake is not None else None
        x = to_float(self.images[idx], spec.pixel_range)  # (b, C, H, W) float
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.labels[idx] if self.labels is not None else None  # (b,)
        with distributed.sync_batchnorm_active(self.dist.enabled and cfg.sync_batchnorm):
            return self._update(x, y, z, y_fake)

    def _update(self, x, y, z, y_fake) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, G, D = self.cfg, self._G_step, self._D_step
        update_d = not cfg.alternate_updates or self.step % 2 == 0
        update_g = not cfg.alternate_updates or self.step % 2 == 1
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16,
                             enabled=cfg.bf16 and self.device.type == "cuda")
        zero = torch.zeros((), device=self.device)
        loss_d = loss_g = zero
        with amp:
            fake = G(z, y_fake)  # (B, C, H, W)
            if update_d:
                # Real and fake batches go through D separately, so each has its own BN
                # statistics (as in the paper's code).
                loss_d = self._bce(D(x, y), 1.0) + self._bce(D(fake.detach(), y_fake), 0.0)
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
            if update_g:
                # Non-saturating loss: G maximises log D(G(z)). D's weight gradients from this
                # pass would be discarded (zeroed before D's next update), so backward is asked
                # for G's alone: autograd then skips D's weight-gradient convolutions (1/12 of
                # the step's FLOPs; G's gradients are bit-identical), and DDP has nothing of D's
                # to average.
                no_sync = self._d_ddp.no_sync() if self._d_ddp is not None else contextlib.nullcontext()
                with no_sync:
                    loss_g = self._bce(D(fake, y_fake), 1.0)
                    self.opt_g.zero_grad(set_to_none=True)
                    loss_g.backward(inputs=self._g_params)
                self.opt_g.step()
        return loss_d.detach(), loss_g.detach()

    def run(self, seed: int, resume: bool = False) -> RunResult:
        self._fresh_state(seed)
        if resume and self.checkpoint.exists():
            # The consumers' loader: weights_only, and one clear error for a truncated file.
            ckpt = load_checkpoint(self.checkpoint, device=self.device)
            self._load_state(ckpt)
            if ckpt.get("complete"):
                return RunResult(self.checkpoint, self.step, 0.0, 0.0, float("nan"), float("nan"))
        cfg = self.cfg
        sum_d = torch.zeros((), device=self.device)
        sum_g = torch.zeros((), device=self.device)
        n_sum, last = 0, (float("nan"), float("nan"))
        start_step, t0 = self.step, time.perf_counter()
        main = self.dist.is_main
        bar = (progress(total=self.total_steps, initial=self.step, unit="step",
                        desc=f"train {cfg.variant} seed {seed}") if main else _NoBar())
        est_from = start_step + ESTIMATE_WARM if self.total_steps - start_step >= ESTIMATE_MIN_STEPS else None
        t_est = 0.0
        while self.step < self.total_steps:
            epoch, pos = divmod(self.step, self.steps_per_epoch)
            lr = cfg.lr_at(epoch)
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
            perm = _epoch_permutation(self.n, seed, epoch, self.device)
            for i in range(pos, self.steps_per_epoch):
                if self.step >= self.total_steps:
                    break
                idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                loss_d, loss_g = self._train_step(idx)
                sum_d, sum_g, n_sum = sum_d + loss_d, sum_g + loss_g, n_sum + 1
                self.step += 1
                bar.update(1)
                if est_from is not None and self.step in (est_from, est_from + ESTIMATE_STEPS):
                    t_est = self._estimate(bar, seed, est_from, t_est, t0)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    # Alternating updates leave one of the two losses at 0 on each step;
                    # report the mean over the steps that updated it.
                    div = max(1, n_sum // 2) if cfg.alternate_updates else n_sum
                    if self.dist.enabled:  # every rank gets here at the same step
                        sum_d, sum_g = (distributed.mean_over_ranks(sum_d),
                                        distributed.mean_over_ranks(sum_g))
                    last = ((sum_d / div).item(), (sum_g / div).item())
                    sum_d.zero_(), sum_g.zero_()
                    n_sum = 0
                    rate = (self.step - start_step) * cfg.batch_size / (time.perf_counter() - t0)
                    bar.set_postfix(loss_d=f"{last[0]:.3f}", loss_g=f"{last[1]:.3f}", img_s=f"{rate:.0f}")
                    if self.on_log and main:
                        self.on_log({"loss_d": last[0], "loss_g": last[1], "lr": lr,
                                     "images_per_second": rate, "step": self.step})
                if self.step % cfg.checkpoint_every == 0 and self.step < self.total_steps:
                    self.save(complete=False)
            if self.step % self.steps_per_epoch == 0 or self.step == self.total_steps:
                if self.on_epoch and main:
                    self.on_epoch(epoch, self)
        bar.close()
        self.save(complete=True)
        distributed.barrier()  # no rank returns before rank 0's final checkpoint exists
        seconds = time.perf_counter() - t0
        done = self.step - start_step
        return RunResult(self.checkpoint, self.step, seconds,
                         done * cfg.batch_size / seconds if seconds > 0 else 0.0, *last)

    def _estimate(self, bar, seed: int, est_from: int, t_start: float, t0: float) -> float:
        """At step est_from: start the clock; ESTIMATE_STEPS later: print the estimate."""
        _sync(self.device)  # two host syncs per run, only for runs long enough to estimate
        now = time.perf_counter()
        if self.step == est_from:
            return now
        per_step = (now - t_start) / ESTIMATE_STEPS
        left = self.total_steps - self.step
        self.estimated_seconds = (now - t0) + per_step * left
        n_seeds = len(self.cfg.seeds)
        msg = (f"estimated wall time: {_fmt_seconds(self.estimated_seconds)} for {self.cfg.variant} "
               f"seed {seed} ({self.total_steps} steps at {per_step * 1e3:.1f} ms/step, "
               f"{self.cfg.batch_size / per_step:.0f} img/s, measured over {ESTIMATE_STEPS} steps)")
        if n_seeds > 1:
            msg += f"; about {_fmt_seconds(self.estimated_seconds * n_seeds)} for its {n_seeds} seeds"
        bar.write(msg, file=sys.stderr)  # a no-op on ranks other than 0
        return now
