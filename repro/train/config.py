"""The typed config of one GAN training run (a `train.<name>` section of a profile)."""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt, NonNegativeFloat, NonNegativeInt

from repro.config import Section


class TrainConfig(Section):
    variant: str
    dataset: str
    split: str = "train"
    # A seeded random subset of the split; None = all of it.
    max_images: PositiveInt | None = None
    # `epochs` at the full learning rate, then `decay_epochs` of linear decay towards 0
    # (the authors' MNIST schedule: 100 + 100).
    epochs: PositiveInt
    decay_epochs: NonNegativeInt = 0
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 0.0002
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    # L2 penalty added to the gradients (Adam's coupled weight decay), 2.5e-5 for MNIST.
    weight_decay: NonNegativeFloat = 0.0
    # G and D updated on alternate minibatches (the authors' MNIST code) instead of both
    # on every minibatch (the paper's other models).
    alternate_updates: bool = False
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    # Hard cap on optimisation steps (None = the full schedule); dry runs set a few.
    max_steps: PositiveInt | None = None
    log_every: PositiveInt = 50
    # Checkpoint (atomically, resumable) every this many steps, and at each epoch end.
    checkpoint_every: PositiveInt = 500
    grid_size: PositiveInt = 64
    bf16: bool = False  # bf16 autocast on GPU; ignored on CPU
    compile: bool = False  # torch.compile the models (no gain measured on a 2-core CPU)
    # NHWC memory layout for conv weights and inputs (faster convolutions: oneDNN's NHWC
    # kernels on a CPU, tensor cores on a GPU; same maths, other summation order, so not
    # bit-identical to NCHW).
    channels_last: bool = False
    # Under torchrun: BN statistics over the global batch instead of each rank's shard
    # (repro.train.distributed); ignored in a single process.
    sync_batchnorm: bool = False

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.decay_epochs

    def lr_at(self, epoch: int) -> float:
        """The authors' decay: after epoch `epochs`, lr drops by lr/decay_epochs per epoch."""
        if epoch < self.epochs or self.decay_epochs == 0:
            return self.lr
        k = epoch - self.epochs
        return self.lr * (1.0 - k / self.decay_epochs)
