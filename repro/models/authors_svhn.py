"""Port of the paper authors' SVHN DCGAN checkpoint (Newmu/dcgan_code, MIT licence,
`models/svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb/`, epoch 200) into our
`svhn32` generator and discriminator.

Files. Old joblib stored each list of arrays as a small pickle (`200_*_params.jl`) that holds
only `NDArrayWrapper` records naming companion `.npy` files (`200_*_params.jl_NN.npy`), and
those `.npy` files are in the upstream folder beside the `.jl`. So nothing needs converting:
`read_jl_index` parses a `.jl` with a restricted unpickler (no joblib, no code executed) and
returns the ordered file names, which fixes the parameter order; the arrays load with
`numpy.load`. `fetch_authors_svhn` downloads all 20 files and checks them against `PINNED_MD5`
(the trust anchor, copied from the MD5SUMS shipped with the checkpoint).

Porting facts (see the checkpoint's README):
- The Theano code used true convolution; torch cross-correlates: every conv and transposed-conv
  kernel is flipped in both spatial dims. Transposed-conv arrays are already (in, out, k, k).
- Linear arrays are (in, out); torch stores (out, in): transposed. No layer has a bias.
- The original batchnorm divides by sqrt(var + 1e-8) with the biased variance: every BN of the
  ported G and D gets eps = 1e-8 (our fresh variants keep torch's 1e-5).
- The original generator has no running averages; it always normalises with the statistics of
  the batch it is sampling. The ported G therefore drops its BN running buffers
  (`use_batch_statistics`) and uses batch statistics in train and eval mode alike: sample it in
  batches of 100 or more, and note its output for one z depends on the rest of the batch.
- The ported D keeps ordinary BN running buffers, initialised to mean 0 / var 1. For features
  the authors infer them once (average over batches of 128 training images of each batch's
  mean and biased variance); the features stage must set them that way before `eval()`.

Golden fingerprint (tests/test_authors_svhn.py) is rewritten with:
  python -m repro.models.authors_svhn --folder ../shared/checkpoints/dcgan_code_svhn \
      --write-fingerprint tests/golden/authors_svhn_fingerprint.json
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import torch

from repro.errors import ReproError, cli_errors
from dataclasses import replace

from repro.models.base import register
from repro.models.dcgan32 import SVHN32_SPEC, svhn32_discriminator, svhn32_generator
from repro.models.layers import (ConvDiscriminator, ConvGenerator, FactoryVariant, batchnorms,
                                 use_batch_statistics)
from repro.utils.fetch import download_file, retrying
from repro.utils.io import file_digest
from repro.utils.safe_pickle import RefusedGlobal, RestrictedUnpickler

URL_BASE = ("https://github.com/Newmu/dcgan_code/raw/master/models/"
            "svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb/")
BN_EPS = 1e-8
D_INDEX, G_INDEX = "200_discrim_params.jl", "200_gen_params.jl"
D_FILES = [f"{D_INDEX}_{i:02d}.npy" for i in range(1, 9)]
G_FILES = [f"{G_INDEX}_{i:02d}.npy" for i in range(1, 11)]

# File pins: the MD5SUMS shipped with the checkpoint (not measurements).
PINNED_MD5 = {
    "200_discrim_params.jl": "c96b7dfd3831623be22dbbd14b85c556",
    "200_discrim_params.jl_01.npy": "3fc007b10a0663e11a974eea897c406a",
    "200_discrim_params.jl_02.npy": "e21f3f1135294b5e79343ef366af4ee9",
    "200_discrim_params.jl_03.npy": "dba094bd0316509e1ce9b162bb2de81d",
    "200_discrim_params.jl_04.npy": "45b5a95338ffd52305c4c50c73489afb",
    "200_discrim_params.jl_05.npy": "ec6e00432e41f8df13738ef56ee923d1",
    "200_discrim_params.jl_06.npy": "07d692a8a0bc53f3a01923c17c5c225e",
    "200_discrim_params.jl_07.npy": "7d9fec4b84eaaf0a0a0f2a7a3337839d",
    "200_discrim_params.jl_08.npy": "c6fe40e128bb3c817dcd048015341a78",
    "200_gen_params.jl": "bbbe959aa60d75dc79406eb92b7daef2",
    "200_gen_params.jl_01.npy": "2cd5c15a5c13f8b9c82781d67042ed9d",
    "200_gen_params.jl_02.npy": "11ee696ac3b7c3547b9afe0220abe6d8",
    "200_gen_params.jl_03.npy": "05b16ef6be3bbfb0c8b5e59d750c4fd6",
    "200_gen_params.jl_04.npy": "48b594d95aca5336b368d9dcc2c52d14",
    "200_gen_params.jl_05.npy": "fa5e34ddeb90c32c0be0c610776ce43d",
    "200_gen_params.jl_06.npy": "16fb5f9b60611a2b85612550ccc63e0b",
    "200_gen_params.jl_07.npy": "a693e1aaaa78698f620dc09dda32f5b0",
    "200_gen_params.jl_08.npy": "7635e0a6ed94ad603027a9e2d00e0990",
    "200_gen_params.jl_09.npy": "4bfa7d79cfd2d72219b61ff75935a925",
    "200_gen_params.jl_10.npy": "510f70ec84bad58a0be3c1de05523f36",
}

_REDOWNLOAD = ("re-download it: `python -m repro.models.authors_svhn --fetch DIR` (online), or "
               "copy the folder from Newmu/dcgan_code " + URL_BASE)


# --- files ----------------------------------------------------------------------------------

def md5(path: Path) -> str:
    return file_digest(path, "md5")


def verify_folder(folder: str | Path, names: list[str] | None = None) -> Path:
    """Check each file (default: the 18 arrays) against the pins, and the folder's MD5SUMS (if
    any) against the pins; ReproError naming the first bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReproError(f"authors' SVHN checkpoint folder {folder} does not exist; {_REDOWNLOAD}")
    sums = folder / "MD5SUMS"
    if sums.is_file():
        for line in sums.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] in PINNED_MD5 and parts[0] != PINNED_MD5[parts[1]]:
                raise ReproError(f"{sums} lists {parts[1]} as {parts[0]}, but the pinned md5 is "
                                 f"{PINNED_MD5[parts[1]]}; the folder is not the authors' "
                                 f"checkpoint: {_REDOWNLOAD}")
    for name in names or D_FILES + G_FILES:
        path = folder / name
        if not path.is_file():
            raise ReproError(f"{path} is missing; {_REDOWNLOAD}")
        if md5(path) != PINNED_MD5[name]:
            raise ReproError(f"{path} fails its md5 check (expected {PINNED_MD5[name]}): the file "
                             f"is corrupt or not the authors'; {_REDOWNLOAD}")
    return folder


class _ArrayRef:
    """Stand-in for joblib's NDArrayWrapper: keeps the pickled attributes (`filename`, ...)."""


class _IndexUnpickler(RestrictedUnpickler):
    """Allows only the two globals an old joblib index holds; nothing is imported or run."""

    # numpy.ndarray is only recorded as the wrapper's `subclass` attribute
    ALLOWED = {("numpy", "ndarray"): "numpy.ndarray"}

    def resolve(self, module: str, name: str):
        if name == "NDArrayWrapper" and module.endswith("joblib.numpy_pickle"):
            return _ArrayRef
        return super().resolve(module, name)


def read_jl_index(path: str | Path) -> list[str]:
    """An old-joblib `.jl` list of arrays -> the ordered names of its companion `.npy` files."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            refs = _IndexUnpickler(f, encoding="latin1").load()
        names = [ref.filename for ref in refs]
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as err:
        what = f"unexpected global {err}" if isinstance(err, RefusedGlobal) else err
        raise ReproError(f"cannot read the joblib index {path} ({what}); {_REDOWNLOAD}") from None
    if not all(isinstance(n, str) and "/" not in n and "\\" not in n for n in names):
        raise ReproError(f"{path} names unexpected files {names}; {_REDOWNLOAD}")
    return names


def load_jl(path: str | Path) -> list[np.ndarray]:
    """Load the arrays an old-joblib `.jl` index points to (no joblib needed)."""
    path = Path(path)
    return [np.load(path.parent / name, allow_pickle=False) for name in read_jl_index(path)]


def fetch_authors_svhn(dest: str | Path, url_base: str = URL_BASE) -> Path:
    """Download the 20 checkpoint files into `dest`, md5-verified, and write MD5SUMS there.
    Files already present with the right md5 are kept; nothing half-written is left behind.
    Each file has a timeout and a bounded retry (repro.utils.fetch)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, want in PINNED_MD5.items():
        target = dest / name
        if target.is_file() and md5(target) == want:
            continue
        retrying(lambda: download_file(url_base + name, target, want),
                 f"the authors' SVHN checkpoint file {name}", [(url_base + name, want)], dest)
    sums = "".join(f"{h}  {n}\n" for n, h in PINNED_MD5.items())
    tmp = dest / ".MD5SUMS.part"
    tmp.write_text(sums)
    tmp.replace(dest / "MD5SUMS")
    return dest


# --- the port -------------------------------------------------------------------------------

def _conv(a: np.ndarray) -> torch.Tensor:
    """True-convolution kernel -> torch cross-correlation kernel (same layout, flipped)."""
    return torch.flip(torch.from_numpy(np.array(a, dtype=np.float32)), [2, 3])


def _vec(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


def _set(param: torch.Tensor, value: torch.Tensor, what: str) -> None:
    if param.shape != value.shape:
        raise ReproError(f"authors' SVHN {what}: array of shape {tuple(value.shape)} does not fit "
                         f"{tuple(param.shape)}; the folder is not this checkpoint: {_REDOWNLOAD}")
    with torch.no_grad():
        param.copy_(value)


def authors_discriminator() -> ConvDiscriminator:
    """svhn32's D with the original BN epsilon (the weights come from `port_discriminator`)."""
    d = svhn32_discriminator()
    for bn in batchnorms(d):
        bn.eps = BN_EPS
    return d


def authors_generator() -> ConvGenerator:
    """svhn32's G with the original BN: epsilon 1e-8 and always batch statistics."""
    gen = svhn32_generator()
    for bn in batchnorms(gen):
        bn.eps = BN_EPS
    return use_batch_statistics(gen)


# Registered so a ported checkpoint (the `port_svhn` stage) loads like any trained one.
SVHN32_AUTHORS = register(FactoryVariant(
    replace(SVHN32_SPEC, name="svhn32_authors",
            description="svhn32 with the authors' BN conventions; holds their ported weights"),
    authors_generator, authors_discriminator))


def port_discriminator(arrays: list[np.ndarray]) -> ConvDiscriminator:
    """D arrays 01..08: w1, w2, g2, b2, w3, g3, b3, wy (4096, 1)."""
    w1, w2, g2, b2, w3, g3, b3, wy = arrays
    d = authors_discriminator()
    conv1, (conv2, bn2), (conv3, bn3) = d.blocks[0][0], d.blocks[1][:2], d.blocks[2][:2]
    _set(conv1.weight, _conv(w1), "D conv1")
    _set(conv2.weight, _conv(w2), "D conv2")
    _set(bn2.weight, _vec(g2), "D bn2 gain")
    _set(bn2.bias, _vec(b2), "D bn2 bias")
    _set(conv3.weight, _conv(w3), "D conv3")
    _set(bn3.weight, _vec(g3), "D bn3 gain")
    _set(bn3.bias, _vec(b3), "D bn3 bias")
    _set(d.classify.weight, _vec(wy).T, "D linear")  # (4096, 1) -> (1, 4096)
    return d


def port_generator(arrays: list[np.ndarray]) -> ConvGenerator:
    """G arrays 01..10: w (100, 4096), g, b, w2, g2, b2, w3, g3, b3, wx."""
    w, g, b, w2, g2, b2, w3, g3, b3, wx = arrays
    gen = authors_generator()
    (dc2, bn2), (dc3, bn3), dcx = gen.blocks[0][:2], gen.blocks[1][:2], gen.blocks[2][0]
    _set(gen.project.weight, _vec(w).T, "G linear")  # (100, 4096) -> (4096, 100)
    _set(gen.project_bn.weight, _vec(g), "G bn gain")
    _set(gen.project_bn.bias, _vec(b), "G bn bias")
    _set(dc2.weight, _conv(w2), "G deconv2")
    _set(bn2.weight, _vec(g2), "G bn2 gain")
    _set(bn2.bias, _vec(b2), "G bn2 bias")
    _set(dc3.weight, _conv(w3), "G deconv3")
    _set(bn3.weight, _vec(g3), "G bn3 gain")
    _set(bn3.bias, _vec(b3), "G bn3 bias")
    _set(dcx.weight, _conv(wx), "G deconv_x")
    return gen


def load_authors_svhn(folder: str | Path) -> tuple[ConvGenerator, ConvDiscriminator]:
    """md5-verified port: (G with batch-statistics BN, D with eps-1e-8 BN), both on CPU."""
    folder = verify_folder(folder)
    d_arrays = [np.load(folder / n, allow_pickle=False) for n in D_FILES]
    g_arrays = [np.load(folder / n, allow_pickle=False) for n in G_FILES]
    return port_generator(g_arrays), port_discriminator(d_arrays)


# --- golden fingerprint ---------------------------------------------------------------------

FINGERPRINT_PIXELS = [(c, r, col) for c in range(3) for r, col in
                      ((4, 4), (16, 16), (27, 9), (9, 27), (31, 0))][:15] + [(0, 0, 31)]


@torch.no_grad()
def fingerprint(gen: ConvGenerator, disc: ConvDiscriminator) -> dict:
    """100 samples from torch.Generator seed 0 normal z: per-channel means, 16 pixels of sample 0,
    and D's first 4 logits on the samples (batch statistics), rounded to 1e-4."""
    z = torch.randn(100, 100, generator=torch.Generator().manual_seed(0))
    x = gen(z)  # (100, 3, 32, 32)
    disc = disc.train()  # batch statistics, as G; no_grad keeps this side-effect-free for params
    logits = disc(x)[:4]

    def r(v) -> list[float]:
        return [round(float(t), 4) for t in v]

    return {
        "z": "torch.randn(100, 100, generator=torch.Generator().manual_seed(0))",
        "channel_means": r(x.mean(dim=(0, 2, 3))),
        "pixels_sample0": r(x[0][c, i, j] for c, i, j in FINGERPRINT_PIXELS),
        "pixel_positions": [list(p) for p in FINGERPRINT_PIXELS],
        "d_logits_first4": r(logits),
    }


@cli_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m repro.models.authors_svhn",
                                     description="fetch / verify / fingerprint the authors' "
                                                 "SVHN DCGAN checkpoint")
    parser.add_argument("--folder", default="../shared/checkpoints/dcgan_code_svhn")
    parser.add_argument("--fetch", metavar="DIR", help="download the checkpoint into DIR")
    parser.add_argument("--write-fingerprint", metavar="JSON", help="write the golden file")
    args = parser.parse_args(argv)
    if args.fetch:
        print(f"fetched and verified: {fetch_authors_svhn(args.fetch)}")
        return
    gen, disc = load_authors_svhn(args.folder)
    fp = fingerprint(gen, disc)
    if args.write_fingerprint:
        from repro.utils.io import write_json
        write_json(args.write_fingerprint, fp)
        print(f"wrote {args.write_fingerprint}")
    else:
        print(fp)


if __name__ == "__main__":
    main()
