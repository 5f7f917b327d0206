"""Table 2's "supervised CNN with the same architecture": D's conv layers + a softmax layer,
trained from scratch on the same labelled images, hyperparameters by random search.

The paper says only "64 random-search trials" and reports the best validation error. The
search space below is the harness's (the paper does not give one): log-uniform learning rate
and weight decay, dropout before the softmax layer, minibatch size and number of epochs. It is
recorded in every output. Training holds the labelled images on the device (1000 of them)
and takes minibatches by seeded permutation, like the GAN trainer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BeforeValidator, PositiveInt
from torch import Tensor, nn

from repro.config import FloatPair, Section
from repro.data.base import to_float
from repro.errors import ReproError
from repro.models.base import Variant
from repro.utils.progress import progress
from repro.utils.seed import seed_everything


# Choices to draw from: a YAML list, or a tuple given in code (strict mode alone would refuse
# a tuple for a list).
Choices = Annotated[list[PositiveInt], BeforeValidator(
    lambda v: list(v) if isinstance(v, tuple) else v)]


class SearchSpace(Section):
    """The random search's space; Table 2's `supervised:` section extends it (one type)."""

    lr: FloatPair = (1e-4, 1e-2)  # log-uniform
    weight_decay: FloatPair = (1e-6, 1e-2)  # log-uniform
    dropout: FloatPair = (0.0, 0.7)  # uniform
    batch_size: Choices = [32, 64, 128]
    epochs: Choices = [10, 20, 40]

    def space(self) -> dict:
        """The space alone (without a section's other keys), as the cells record it."""
        return self.model_dump(include={"lr", "weight_decay", "dropout", "batch_size", "epochs"})


@dataclass(frozen=True)
class Trial:
    lr: float
    weight_decay: float
    dropout: float
    batch_size: int
    epochs: int


def sample_trials(space: SearchSpace, n: int, seed: int) -> list[Trial]:
    rng = np.random.default_rng(seed)

    def loguniform(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    return [Trial(lr=loguniform(*space.lr), weight_decay=loguniform(*space.weight_decay),
                  dropout=float(rng.uniform(*space.dropout)),
                  batch_size=int(rng.choice(space.batch_size)), epochs=int(rng.choice(space.epochs)))
            for _ in range(n)]


class ConvClassifier(nn.Module):
    """D's conv stack (fresh N(0, 0.02) init) -> dropout -> linear softmax layer."""

    def __init__(self, variant: Variant, n_classes: int, dropout: float):
        super().__init__()
        self.body = variant.build_discriminator()
        spec = variant.spec
        with torch.no_grad():
            probe = torch.zeros(2, spec.channels, spec.image_size, spec.image_size)
            last = self.body.layer_outputs(probe)[-1]  # (2, C, h, w)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(last[0].numel(), n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body.layer_outputs(x)[-1].flatten(1)  # (B, C*h*w)
        return self.head(self.drop(h))  # (B, n_classes)


@torch.no_grad()
def error_rate(model: nn.Module, images: Tensor, labels: Tensor, pixel_range: str,
               batch: int = 512) -> float:
    """Top-1 error in % of `model` (eval mode) on uint8 images."""
    model.eval()
    wrong = 0
    for s in range(0, len(images), batch):
        x = to_float(images[s:s + batch], pixel_range)
        wrong += (model(x).argmax(1) != labels[s:s + batch]).sum().item()
    return 100.0 * wrong / len(images)


def train_classifier(variant: Variant, trial: Trial, images: Tensor, labels: Tensor, *,
                     n_classes: int, seed: int, device: torch.device) -> ConvClassifier:
    """Train one classifier on uint8 images (already on `device`) with the trial's settings."""
    if len(images) < trial.batch_size:
        raise ReproError(f"{len(images)} labelled images, fewer than batch_size {trial.batch_size}")
    seed_everything(seed)
    model = ConvClassifier(variant, n_classes, trial.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=trial.lr, betas=(0.5, 0.999),
                           weight_decay=trial.weight_decay)
    g = torch.Generator().manual_seed(seed)
    steps = len(images) // trial.batch_size
    for _ in range(trial.epochs):
        model.train()
        perm = torch.randperm(len(images), generator=g).to(device)
        for i in range(steps):
            idx = perm[i * trial.batch_size:(i + 1) * trial.batch_size]
            x = to_float(images[idx], variant.spec.pixel_range)  # (B, C, H, W)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def random_search(variant: Variant, train: tuple[Tensor, Tensor], valid: tuple[Tensor, Tensor],
                  test: tuple[Tensor, Tensor], *, n_trials: int, space: SearchSpace, seed: int,
                  n_classes: int, device: torch.device) -> dict:
    """Best of `n_trials` random trials by validation error; its validation and test error.

    Returns {"best": {trial..., "val_err", "test_err"}, "trials": [{trial..., "val_err"}]}.
    Only the chosen trial is scored on the test set.
    """
    trials = sample_trials(space, n_trials, seed)
    pr = variant.spec.pixel_range
    train = tuple(t.to(device) for t in train)
    valid = tuple(t.to(device) for t in valid)
    results, best, best_model = [], None, None
    for k, trial in enumerate(progress(trials, desc="supervised CNN search", unit="trial")):
        model = train_classifier(variant, trial, *train, n_classes=n_classes, seed=seed + k,
                                 device=device)
        val = error_rate(model, *valid, pr)
        results.append({**asdict(trial), "val_err": val})
        if best is None or val < best["val_err"]:
            best, best_model = results[-1], model
    test_err = error_rate(best_model, test[0].to(device), test[1].to(device), pr)
    return {"best": {**best, "test_err": test_err}, "trials": results}
