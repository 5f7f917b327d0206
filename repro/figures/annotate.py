"""Render the samples whose windows a user boxes by hand (Fig. 6 in the `paper` profile).

    python -m repro.figures.annotate --checkpoint results/checkpoints/lsun64/seed0.pt \
        --out annotations/fig6 [--n 150 --seed 6 --scale 4]

Writes `sample_<id>.png` (each sample enlarged `scale` times), `contact_sheet.png` (all of them,
numbered row by row) and `boxes.json`, a template with the seed, the count and an empty `boxes`
mapping. Fill it as {"<id>": [[x0, y0, x1, y1], ...]} in the 64x64 sample's pixels (divide
coordinates read on the enlarged PNGs by `scale`; x1, y1 exclusive), then set
`figures.windows.annotations` to the file. `--n` / `--seed` must equal the profile's
`figures.windows.n_samples` / `render_seed` (and `--reference` / `--batch-size` its
`figures.reference_z` / `batch_size`): the stage renders the same z and reads the ids.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from repro.errors import ReproError, cli_errors
from repro.figures.common import REFERENCE_Z, render, sample_z, to01, to_u8
from repro.models.checkpoint import build_from_checkpoint
from repro.train.sampling import save_grid
from repro.utils.device import resolve_device
from repro.utils.io import atomic_path, write_json


def render_samples(checkpoint: Path, n: int, seed: int, device: torch.device,
                   reference: int = REFERENCE_Z, batch_size: int = 256) -> torch.Tensor:
    """The stage's Fig. 6 samples: uint8 (n, 3, H, W), identical to what it boxes when
    `reference` / `batch_size` equal figures.reference_z / figures.batch_size."""
    variant, G, _, _ = build_from_checkpoint(checkpoint, device=device)
    x = render(variant, G, sample_z(variant, n, seed, device), batch_size=batch_size, reference=reference)
    return to_u8(to01(x, variant.spec.pixel_range)).cpu()


def write_annotation_kit(images: torch.Tensor, out: Path, seed: int, scale: int) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        big = img.repeat_interleave(scale, 1).repeat_interleave(scale, 2)  # (3, sH, sW)
        with atomic_path(out / f"sample_{i}.png") as tmp:
            Image.fromarray(big.permute(1, 2, 0).numpy()).save(tmp, format="png")
    save_grid(images, out / "contact_sheet.png", nrow=10,
              title=f"samples 0..{len(images) - 1}, numbered row by row, 10 per row (seed {seed})")
    template = out / "boxes.json"
    if template.exists():
        raise ReproError(f"{template} exists; it may hold your boxes: move it away first")
    write_json(template, {"seed": seed, "n_samples": len(images), "boxes": {},
                          "help": "boxes: {\"<id>\": [[x0, y0, x1, y1], ...]} in 64x64 pixels"})


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--reference", type=int, default=REFERENCE_Z, help="= figures.reference_z")
    ap.add_argument("--batch-size", type=int, default=256, help="= figures.batch_size")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    if args.n < 1 or args.scale < 1:
        raise ReproError("--n and --scale must be positive")
    images = render_samples(args.checkpoint, args.n, args.seed, resolve_device(args.device),
                            args.reference, args.batch_size)
    write_annotation_kit(images, args.out, args.seed, args.scale)
    print(json.dumps({"samples": args.n, "out": str(args.out)}))


if __name__ == "__main__":
    main()
