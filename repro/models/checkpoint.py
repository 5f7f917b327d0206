"""Writing and reading trainer checkpoints, with clear errors for wrong or damaged files.

Content hash: `save_checkpoint` seals a checkpoint with the SHA-256 of its content (every key,
tensors by their bytes; `content_digest`), and `load_checkpoint` recomputes it, so a flipped
byte that still unpickles is refused instead of loaded. Checkpoints written before the seal
existed (the committed shipped ones, md5-pinned by their manifest) have none and load as before.

Folder record: the train stage writes `TRAINED_BY.json` (train section, variant, data) beside a
section's checkpoints; a checkpoint loaded from that folder must match it, so another run's
checkpoint copied in (an `svhn32` one in `imagenet32/`) is refused by every consumer.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from repro.errors import ReproError
from repro.registry import MODELS
from repro.utils.io import torch_save, write_json

REQUIRED = ("variant", "generator", "discriminator", "config", "git", "seed")
SEAL = "content_sha256"
FOLDER_RECORD = "TRAINED_BY.json"
# What a folder record pins: the variant, and the config keys that choose the training data.
DATA_KEYS = ("dataset", "split", "max_images")


def _feed(h, obj: Any) -> None:
    """Add `obj` to hash `h` canonically (dict keys sorted, tensors as dtype, shape, bytes)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=lambda k: (type(k).__name__, str(k))):
            _feed(h, key)
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    else:  # str, int, float, bool, None, torch.Size...: repr round-trips them exactly
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_digest(ckpt: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint's content, its seal left out."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in ckpt.items() if k != SEAL})
    return h.hexdigest()


def seal(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint with its content hash (any earlier seal replaced)."""
    return {**{k: v for k, v in ckpt.items() if k != SEAL}, SEAL: content_digest(ckpt)}


def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> None:
    torch_save(seal(ckpt), path)


def write_folder_record(folder: str | Path, section: str, variant: str,
                        config: dict[str, Any]) -> None:
    """Say which train section, variant and data the checkpoints in `folder` come from."""
    write_json(Path(folder) / FOLDER_RECORD, {"section": section, "variant": variant,
                                              **{k: config.get(k) for k in DATA_KEYS}})


def _check_folder(path: Path, ckpt: dict[str, Any]) -> None:
    record_path = path.parent / FOLDER_RECORD
    if not record_path.is_file():
        return  # a checkpoint outside a train stage's folder: nothing to match
    try:
        record = json.loads(record_path.read_text())
        section, want = record["section"], {k: record[k] for k in ("variant", *DATA_KEYS)}
    except (ValueError, KeyError, TypeError):
        raise ReproError(f"{record_path} is damaged; rerun the train stage that writes it "
                         f"(dvc repro train@{path.parent.name})") from None
    got = {"variant": ckpt.get("variant"), **{k: (ckpt.get("config") or {}).get(k) for k in DATA_KEYS}}
    if got != want:
        differ = ", ".join(f"{k} {got[k]!r} (folder: {want[k]!r})" for k in want if got[k] != want[k])
        raise ReproError(
            f"{path} is not a checkpoint of train section {section!r}, whose folder it is in: "
            f"{differ}. It is another run's checkpoint; remove it and rerun "
            f"`dvc repro train@{section}`, or put it in its own section's folder")


def _first_sentence(err: Exception) -> str:
    """torch's messages run to paragraphs; users get one line (its first sentence)."""
    text = " ".join(str(err).split())
    return text.split(". ")[0].rstrip(".") or type(err).__name__


def load_weights_file(path: str | Path, what: str, fix: str,
                      device: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only, so nothing in a foreign or tampered file is imported or
    run; a file that would need code, or cannot be read, is one ReproError ending in `fix`."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():  # e.g. a truncated legacy-format file
            raise ReproError(f"{what} {path} is unreadable (UnpicklingError: "
                             f"{_first_sentence(err)}); {fix}") from None
        found = re.search(r"GLOBAL (\S+)", str(err))
        needs = f" (it needs {found.group(1)})" if found else ""
        raise ReproError(f"{what} {path} holds objects other than tensors and plain values{needs}: "
                         "it is not a weights file, and loading it could run code, so it is "
                         f"refused; {fix}") from None
    except Exception as err:  # torch raises many types for truncated/corrupt files
        raise ReproError(f"{what} {path} is unreadable ({type(err).__name__}: "
                         f"{_first_sentence(err)}); {fix}") from None


def load_checkpoint(path: str | Path, expect_variant: str | None = None,
                    device: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"checkpoint {path} not found; train it first (dvc repro) or fix the path")
    ckpt = load_weights_file(path, "checkpoint", "delete it and retrain with this harness", device)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise ReproError(f"{path} is not a repro checkpoint (needs keys {', '.join(REQUIRED)})")
    if SEAL in ckpt and content_digest(ckpt) != ckpt[SEAL]:
        raise ReproError(f"checkpoint {path} fails its content hash: it changed after it was "
                         "written (a damaged or edited file); delete it and retrain")
    if expect_variant is not None and ckpt["variant"] != expect_variant:
        raise ReproError(f"{path} holds variant {ckpt['variant']!r}, expected {expect_variant!r}; "
                         "point to a checkpoint of the right variant")
    _check_folder(path, ckpt)
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
