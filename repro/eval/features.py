"""Discriminator features for the L2-SVM (Tables 1 and 2): BN statistics, then extraction.

1. `infer_bn_stats`: the authors' recipe. BN statistics are inferred once over the training
   images: each BN layer's running_mean is the mean over minibatches (of 128) of each batch's
   per-channel mean, and running_var the mean over minibatches of each batch's *biased*
   per-channel variance; deeper layers see their inputs normalised with batch statistics, as
   in a training-mode forward pass.
2. `extract_features`: `D.feature_vector(x)` batch by batch in eval mode (so with those
   statistics), written to a numpy array or to an atomically written .npy memmap.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from repro.data.base import to_float
from repro.errors import ReproError
from repro.utils.device import as_device, channels_last_weights
from repro.utils.io import atomic_path
from repro.utils.progress import progress

_BN = nn.modules.batchnorm._BatchNorm
_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32}


def _layout(x: Tensor, channels_last: bool) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise ReproError("images must be a uint8 (N, C, H, W) tensor")
    if images.shape[0] == 0:
        raise ReproError("no images given (N = 0)")


def _ensure_buffers(bn: _BN, dev: torch.device) -> None:
    """Give a BN that normalises with batch statistics only (track_running_stats=False, e.g. after
    `repro.models.layers.use_batch_statistics`) running buffers again, so eval uses them."""
    if bn.running_mean is None:
        bn.track_running_stats = True
        bn.register_buffer("running_mean", torch.zeros(bn.num_features, device=dev))
        bn.register_buffer("running_var", torch.ones(bn.num_features, device=dev))
        bn.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=dev))


def infer_bn_stats(D: nn.Module, images_uint8: Tensor, batch_size: int = 128,
                   pixel_range: str = "tanh", device: str | torch.device = "cpu",
                   labels: Tensor | None = None, fast: bool = False) -> dict:
    """Set every BN layer of D to the authors' inferred statistics; leave D in eval mode.

    Implementation: forward pre-hooks on each BN record its input's per-channel batch mean
    and biased variance (`torch.var_mean(..., correction=0)`, accumulated in float64), while
    the BN layers run in training mode (normalising with batch statistics) with momentum 0,
    so torch's own running-average update is a no-op. We use hooks rather than momentum=None
    because torch's cumulative average stores the *unbiased* variance (factor n/(n-1),
    n = B*H*W elements per channel), which would need a per-batch correction; the hooks give
    the biased variance directly. A failure leaves D's statistics unchanged.

    fast=True (opt-in; 1.1-1.2x on a 2-core CPU): the forward passes run in NHWC
    (`channels_last_weights`), and each hook loads its batch statistics into the BN's
    buffers so that the BN normalises in eval mode instead of computing them a second time
    (training-mode BN cost as much as the hook's var_mean, in NHWC twice that). The same
    math in another summation order: statistics within ~1e-6 relative of the default's, not
    bit for bit. The default (fast=False) gives the values this function always gave.

    The images are taken in the order given, in batches of `batch_size`; the trailing partial
    batch counts as one minibatch (equal weight), except a trailing single image, which is
    dropped (a 1-d BN cannot take batch statistics of one sample). BN layers without running
    buffers get them (see `_ensure_buffers`). D is moved to `device` (in place). `labels` are
    passed to D's forward for class-conditional discriminators.

    Returns {"n_layers", "n_batches", "n_images"}.
    """
    _check_images(images_uint8)
    if batch_size < 1:
        raise ReproError(f"batch_size must be positive, got {batch_size}")
    dev = as_device(device)
    D.to(dev)
    bns = [m for m in D.modules() if isinstance(m, _BN)]
    if not bns:
        raise ReproError("the discriminator has no BatchNorm layer: nothing to infer")
    for bn in bns:
        _ensure_buffers(bn, dev)
    sums = {id(bn): [torch.zeros(bn.num_features, dtype=torch.float64, device=dev),
                     torch.zeros(bn.num_features, dtype=torch.float64, device=dev)] for bn in bns}

    def record(bn, inputs):
        x = inputs[0]  # (B, C) or (B, C, *spatial)
        dims = [0] + list(range(2, x.dim()))
        var, mean = torch.var_mean(x.float(), dim=dims, correction=0)
        acc = sums[id(bn)]
        acc[0] += mean.double()
        acc[1] += var.double()
        if fast:  # eval-mode BN then normalises with exactly these
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)

    N = images_uint8.shape[0]
    starts = [s for s in range(0, N, batch_size) if min(batch_size, N - s) > 1 or N == 1]
    saved = [(bn.momentum, bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
    hooks = [bn.register_forward_pre_hook(record) for bn in bns]
    D.eval()  # dropout etc. off; only the BN layers use batch statistics
    ok = False
    try:
        for bn in bns:
            bn.momentum = 0.0
            bn.train(not fast)
        with torch.inference_mode(), channels_last_weights(D, fast) as cl:
            for s in progress(starts, desc="BN statistics", unit="batch"):
                x = to_float(images_uint8[s:s + batch_size].to(dev), pixel_range)  # (B, C, H, W)
                x = _layout(x, cl)
                y = None if labels is None else labels[s:s + batch_size].to(dev)
                if y is None:
                    D(x)
                else:
                    D(x, y)
        ok = True
    finally:
        for h in hooks:
            h.remove()
        for bn, (momentum, mean, var) in zip(bns, saved):
            bn.momentum = momentum
            if not ok:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
        D.eval()
    n = len(starts)
    for bn in bns:
        mean_sum, var_sum = sums[id(bn)]
        bn.running_mean.copy_(mean_sum / n)
        bn.running_var.copy_(var_sum / n)
        bn.num_batches_tracked.fill_(n)
    return {"n_layers": len(bns), "n_batches": n, "n_images": sum(min(batch_size, N - s) for s in starts)}


def extract_features(D: nn.Module, images_uint8: Tensor, *, batch_size: int = 256,
                     pixel_range: str = "tanh", device: str | torch.device = "cpu",
                     out_path: str | Path | None = None, dtype=np.float16,
                     max_bytes: int | None = None, desc: str = "features",
                     fast: bool = False) -> np.ndarray:
    """(N, C, H, W) uint8 images -> (N, F) `D.feature_vector` features, in eval mode.

    D is moved to `device` and put in eval mode (BN uses its running statistics: call
    `infer_bn_stats` first for the authors' recipe). Batches run under `torch.inference_mode`;
    each batch's features are cast to `dtype` on the device and copied to the host (on CUDA
    through two pinned buffers with a one-batch lag, so the copy overlaps the next forward).

    out_path given: the features go to an .npy file written atomically (a temporary file
    beside it, filled through `numpy.lib.format.open_memmap`, renamed when complete; after an
    error no file is left); returns `np.load(out_path, mmap_mode="r")`. Otherwise returns an
    in-memory array; with `max_bytes` set, an (N, F) array larger than that raises ReproError.

    dtype: float16 (default) or float32. float16 halves the size (50,000 x 28,672 features:
    2.9 GB instead of 5.7 GB) at a relative rounding error of at most 2^-11 (about 5e-4) per
    value, with magnitudes above 65,504 overflowing: non-finite features raise ReproError.

    fast=True (opt-in; 1.2-1.3x on a 2-core CPU): the forward passes run in NHWC
    (`channels_last_weights`). Features then differ from the default's by float32 rounding
    in another summation order (measured on imagenet32's D: <= 2e-5 absolute, 7e-6 of each
    feature's scale), so near-zero values are not within float16 rounding of their own
    magnitude and the float16 output is not bit-identical; fast=False (the default) gives
    the values this function always gave. The batch size does not change the values
    (eval-mode BN is per image; checked bit for bit at 64, 128 and 256).
    """
    _check_images(images_uint8)
    if batch_size < 1:
        raise ReproError(f"batch_size must be positive, got {batch_size}")
    np_dtype = np.dtype(dtype)
    if np_dtype not in _DTYPES:
        raise ReproError(f"feature dtype must be float16 or float32, got {np_dtype}")
    t_dtype = _DTYPES[np_dtype]
    dev = as_device(device)
    D.to(dev).eval()
    N = images_uint8.shape[0]
    cuda = dev.type == "cuda"

    with ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out_path)) if out_path is not None else None
        out = None
        pinned: list[Tensor] = []
        pending = None  # (start, host tensor, cuda event or None)

        def flush(item):
            start, host, event = item
            if event is not None:
                event.synchronize()
            out[start:start + host.shape[0]] = host.numpy()

        with torch.inference_mode(), progress(total=N, desc=desc, unit="img") as bar, \
                channels_last_weights(D, fast) as cl:
            bad = torch.zeros((), dtype=torch.bool, device=dev)  # any non-finite value, no sync
            for k, s in enumerate(range(0, N, batch_size)):
                x = to_float(images_uint8[s:s + batch_size].to(dev, non_blocking=True),
                             pixel_range)  # (B, C, H, W)
                f = D.feature_vector(_layout(x, cl))  # (B, F)
                if f.dim() != 2 or f.shape[0] != x.shape[0]:
                    raise ReproError(f"feature_vector returned shape {tuple(f.shape)} for a batch "
                                     f"of {x.shape[0]}; expected (B, F)")
                f = f.to(t_dtype)
                bad |= ~torch.isfinite(f).all()
                if out is None:
                    F = f.shape[1]
                    size = N * F * np_dtype.itemsize
                    if tmp is None and max_bytes is not None and size > max_bytes:
                        raise ReproError(f"features ({N} x {F} {np_dtype}, {size / 1e9:.2f} GB) exceed "
                                         f"max_bytes={max_bytes}; give an out_path to write them to "
                                         "a memory-mapped .npy file")
                    out = (np.lib.format.open_memmap(tmp, mode="w+", dtype=np_dtype, shape=(N, F))
                           if tmp is not None else np.empty((N, F), dtype=np_dtype))
                    if cuda:
                        pinned = [torch.empty((batch_size, F), dtype=t_dtype, pin_memory=True)
                                  for _ in range(2)]
                elif f.shape[1] != out.shape[1]:
                    raise ReproError(f"feature_vector changed width: {f.shape[1]} != {out.shape[1]}")
                if cuda:
                    host = pinned[k % 2][:f.shape[0]]
                    host.copy_(f, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                    item = (s, host, event)
                else:
                    item = (s, f, None)
                if pending is not None:
                    flush(pending)
                pending = item
                bar.update(x.shape[0])
            flush(pending)
        if bool(bad):
            raise ReproError(f"non-finite features (overflow in {np_dtype}? float16 holds |x| <= "
                             "65504); use dtype=np.float32 or check the discriminator")
        if tmp is not None:
            out.flush()
            del out  # close the memmap before the rename
    if out_path is not None:
        return np.load(out_path, mmap_mode="r")
    return out
