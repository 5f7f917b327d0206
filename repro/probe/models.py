"""A user's model as the probe sees it: built from `pkg.module:factory` and a weights file, its
input read off the model (first convolution, a probe forward pass), a discriminator's named
layers as features, and a generator's output fitted to the protocol's images. Every fit is
returned as a deviation line, never applied silently."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from repro.data.fit import pad_geometry
from repro.errors import ReproError
from repro.models.base import Variant, VariantSpec
from repro.models.checkpoint import load_weights_file
from repro.models.layers import FEATURE_GRID, pooled_features
from repro.utils.io import file_digest

# Input sizes a probe forward pass tries, in order, when --image-size is not given: the
# paper's 32 first, then the other sizes DCGANs are commonly built for.
SIZES = (32, 64, 28, 128, 96, 48, 16)


def load_factory(spec: str) -> Callable[..., Any]:
    """'pkg.module:factory' -> the callable."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ReproError(f"{spec!r} must look like pkg.module:factory")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise ReproError(f"cannot import {module!r} ({err}); is it on PYTHONPATH?") from None
    except Exception as err:  # the user's module failed while importing
        detail = " ".join(str(err).split())[:300]
        raise ReproError(f"importing {module!r} raised {type(err).__name__}: {detail}; fix the "
                         "module so it imports cleanly") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ReproError(f"{module} has no {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ReproError(f"{spec} is not callable")
    return obj


def build(spec: str, weights: Path | None) -> nn.Module:
    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as err:  # the user's code: any failure is theirs, said in one line
        detail = " ".join(str(err).split())[:300]
        raise ReproError(f"{spec}() raised {type(err).__name__}: {detail}; the factory must "
                         "build the model when called with no arguments") from None
    if not isinstance(model, nn.Module):
        raise ReproError(f"{spec}() returned a {type(model).__name__}, not a torch nn.Module")
    if weights is not None:
        if not Path(weights).is_file():
            raise ReproError(f"--weights {weights} not found")
        state = load_weights_file(weights, "--weights", "save the model's state dict (torch.save("
                                  "model.state_dict(), FILE)) and pass that file")
        if isinstance(state, nn.Module) or not isinstance(state, dict):
            raise ReproError(f"{weights} must hold a state dict (model.state_dict())")
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ReproError(f"{weights} does not fit {spec}(): {err}") from None
    return model.eval()


def sha256_file(path: Path | None) -> str | None:
    return None if path is None else file_digest(path, "sha256")


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    return None


def infer_input(model: nn.Module, channels: int | None, size: int | None) -> tuple[int, int, str]:
    """(channels, size, how they were found) of a discriminator's input: channels from its
    first Conv2d, the size from forward passes (the first size whose output has one score per
    image; else the first that runs). Given values are only checked."""
    conv = first_conv(model)
    c = channels or (conv[1].in_channels if conv else None)
    if c is None:
        raise ReproError("the model has no Conv2d to read its input channels from; pass --channels")
    sizes = [size] if size else list(SIZES)
    runs, errors = [], []
    for s in sizes:
        try:
            with torch.no_grad():
                out = model(torch.zeros(2, c, s, s))
        except (RuntimeError, ValueError, TypeError) as err:
            errors.append(" ".join(str(err).split())[:200])
            continue
        runs.append(s)
        if isinstance(out, torch.Tensor) and out.numel() == 2:  # one score per image
            runs = [s]
            break
    if not runs:
        others = (f" and on every other size tried: {', '.join(map(str, sizes[1:]))}"
                  if len(sizes) > 1 else "")
        raise ReproError(f"the model fails on a ({c}, {sizes[0]}, {sizes[0]}) input{others} "
                         f"({errors[0]}); set --image-size and --channels to the input it takes")
    s = runs[0]
    how = (("--channels" if channels else f"{conv[0]}.in_channels") + ", "
           + ("--image-size" if size else "a probe forward pass"))
    return c, s, how


class Probed(nn.Module):
    """A user's discriminator as the probes see it: `feature_vector(x)` is the named layers'
    outputs, each max-pooled to a 4x4 grid, flattened and concatenated (forward hooks, so any
    module works; the pooling happens inside the hook, before an in-place activation that
    follows the layer can change its output)."""

    def __init__(self, model: nn.Module, layers: list[str], *, pixel_range: str, image_size: int,
                 channels: int, what: str, data_source: str):
        super().__init__()
        modules = dict(model.named_modules())
        unknown = [n for n in layers if n not in modules or not n]
        if unknown or not layers:
            names = ", ".join(n for n in modules if n)
            raise ReproError(f"--layers {','.join(unknown) or '(none)'}: no such module; "
                             f"valid names: {names}")
        self.model, self.names = model, list(layers)
        self.layers = [modules[n] for n in layers]
        self.pixel_range, self.what, self.data_source = pixel_range, what, data_source
        self.image_size, self.channels = image_size, channels
        try:
            with torch.no_grad():
                outs = self._pooled(torch.zeros(2, channels, image_size, image_size), raw=True)
        except (RuntimeError, ValueError, TypeError) as err:
            detail = " ".join(str(err).split())[:300]
            raise ReproError(f"the model fails on a ({channels}, {image_size}, {image_size}) input "
                             f"({type(err).__name__}: {detail}); set --image-size and --channels "
                             "to the input size it takes") from None
        for name, o in zip(self.names, outs):
            if o.dim() != 4:
                raise ReproError(f"layer {name} outputs shape {tuple(o.shape)}, not (B, C, H, W); "
                                 "name conv layers (or their activations)")
            if o.shape[-1] % FEATURE_GRID or o.shape[-2] % FEATURE_GRID:
                raise ReproError(f"layer {name} outputs {tuple(o.shape[-2:])} maps, not a multiple "
                                 f"of {FEATURE_GRID}: the paper's recipe max-pools each layer to "
                                 f"{FEATURE_GRID}x{FEATURE_GRID} in equal windows; name other "
                                 "layers or set --image-size")
        self.widest_layer = max(o.shape[1] for o in outs)
        self.feature_dim = sum(o.shape[1] * FEATURE_GRID * FEATURE_GRID for o in outs)

    def _pooled(self, x: torch.Tensor, raw: bool = False) -> list[torch.Tensor]:
        got: dict[int, torch.Tensor] = {}

        def hook(i):
            def grab(module, inputs, output):
                got[i] = output if raw else pooled_features([output])
            return grab

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.layers)]
        try:
            self.model(x)
        finally:
            for h in handles:
                h.remove()
        return [got[i] for i in range(len(self.layers))]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x)

    def feature_vector(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self._pooled(x), dim=1)  # (B, feature_dim)


class UserVariant(Variant):
    """A user's class-conditional generator as Table 3's sampler sees it."""

    def __init__(self, spec: VariantSpec):
        self.spec = spec


class FittedG(nn.Module):
    """G(z, y) whose (C, H, W) output is fitted to the protocol's (channels, size, size):
    RGB -> luma; `how` "pad" crops a larger output at the centre (the inverse of padding the
    training images, e.g. 28 -> 32) or pads a smaller one with black, "resize" resizes
    (bilinear, antialiased). `deviations` names what it does."""

    def __init__(self, G: nn.Module, shape: tuple[int, ...], channels: int, size: int, how: str,
                 pixel_range: str):
        super().__init__()
        self.G, self.channels, self.size, self.how = G, channels, size, how
        self.black = -1.0 if pixel_range == "tanh" else 0.0
        c, h, w = shape
        if h != w:
            raise ReproError(f"the generator makes {h}x{w} images; the probe fits square "
                             "images only")
        if c not in (1, 3) or channels not in (1, 3):
            raise ReproError(f"the generator makes {c}-channel images; the probe converts 1 <-> 3")
        self.c0, self.h = c, h
        self.deviations: list[str] = []
        if c != channels:
            self.deviations.append(
                f"generator output {c} channels converted to {channels} "
                + ("(luma 0.299R + 0.587G + 0.114B)" if channels == 1 else "(grey replicated)"))
        if h != size:
            if how == "resize":
                what = f"resized {h}x{h} -> {size}x{size} (bilinear, antialiased; --fit resize)"
            elif h > size:
                what = (f"centre-cropped {h}x{h} -> {size}x{size} ({(h - size) // 2} px each side; "
                        f"--fit pad: the inverse of zero-padding {size} -> {h})")
            else:
                what = (f"zero-padded {h}x{h} -> {size}x{size} (centred, black; --fit pad)")
            self.deviations.append(f"generator output {what}")

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.G(z, y)
        if self.c0 != self.channels:
            x = ((x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1))
                 .sum(1, keepdim=True) if self.channels == 1 else x.expand(-1, 3, -1, -1))
        if self.h == self.size:
            return x
        if self.how == "resize":
            return F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True,
                                 align_corners=False)
        if self.h > self.size:
            top = (self.h - self.size) // 2
            return x[:, :, top:top + self.size, top:top + self.size]
        return F.pad(x, pad_geometry(self.h, self.h, self.size), value=self.black)
