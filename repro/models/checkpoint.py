"""Reading trainer checkpoints back into models, with clear errors for wrong files."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from repro.errors import ReproError
from repro.registry import MODELS

REQUIRED = ("variant", "generator", "discriminator", "config", "git", "seed")


def _first_sentence(err: Exception) -> str:
    """torch's messages run to paragraphs; users get one line (its first sentence)."""
    text = " ".join(str(err).split())
    return text.split(". ")[0].rstrip(".") or type(err).__name__


def load_checkpoint(path: str | Path, expect_variant: str | None = None,
                    device: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"checkpoint {path} not found; train it first (dvc repro) or fix the path")
    try:
        # weights_only: a harness checkpoint holds tensors and plain values only, so nothing in
        # a foreign or tampered file is imported or run.
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():  # e.g. a truncated legacy-format file
            raise ReproError(f"checkpoint {path} is unreadable (UnpicklingError: "
                             f"{_first_sentence(err)}); delete it and retrain") from None
        found = re.search(r"GLOBAL (\S+)", str(err))
        what = f" (it needs {found.group(1)})" if found else ""
        raise ReproError(f"checkpoint {path} holds objects other than tensors and plain values"
                         f"{what} and will not be loaded; recreate it with this harness") from None
    except Exception as err:  # torch raises many types for truncated/corrupt files
        raise ReproError(f"checkpoint {path} is unreadable ({type(err).__name__}: "
                         f"{_first_sentence(err)}); delete it and retrain") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise ReproError(f"{path} is not a repro checkpoint (needs keys {', '.join(REQUIRED)})")
    if expect_variant is not None and ckpt["variant"] != expect_variant:
        raise ReproError(f"{path} holds variant {ckpt['variant']!r}, expected {expect_variant!r}; "
                         "point to a checkpoint of the right variant")
    return ckpt


def build_from_checkpoint(path: str | Path, expect_variant: str | None = None,
                          device: str | torch.device = "cpu"):
    """-> (variant, G, D, ckpt) with weights loaded, models in eval mode on `device`."""
    ckpt = load_checkpoint(path, expect_variant, device)
    variant = MODELS.get(ckpt["variant"])
    G, D = variant.build_generator().to(device), variant.build_discriminator().to(device)
    try:
        G.load_state_dict(ckpt["generator"])
        D.load_state_dict(ckpt["discriminator"])
    except RuntimeError as err:
        raise ReproError(f"{path}: weights do not fit variant {ckpt['variant']!r} ({err}); "
                         "the checkpoint was made by another version of the model") from None
    return variant, G.eval(), D.eval(), ckpt
