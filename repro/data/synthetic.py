"""Generated datasets: stand-ins that let every experiment run without downloads.

None of them is data the paper used (`real=False`; artefacts made from them are labelled so).
Each split is generated in chunks of `CHUNK` images, chunk c of (name, split, seed) drawn from
its own RNG, so a set is identical across runs and machines (CPU generation), a smaller
`max_images` gives a prefix of a larger one, and the splits are independent draws.

- synth_colour10: 32x32 RGB, 10 motif classes (four grating orientations, rings, checkerboard,
  plus, X, filled disc, square outline) at random position, size, tilt, colours, background
  gradient, brightness and noise. Colour and contrast sign are random, so a linear model on
  raw pixels does poorly, while oriented / shaped conv features separate the classes
  (tests/test_synthetic.py measures both).
- synth_digits: 28x28 grey, digit glyphs 0-9 from a 5x7 bitmap font under random affine
  warps (scale, aspect, tilt, shear, shift), blur and stroke width; white on black like MNIST.
- synth_rooms: 64x64 RGB, unlabeled "bedrooms": wall, floor, a bed (headboard, blanket,
  pillows) and 0-2 windows (P(>=1 window) = 0.7), with exact visible-pixel masks
  `masks["bed"]`, `masks["window"]` (N, 64, 64) bool.
"""

from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F

from repro.data.base import DatasetSpec, ImageSet
from repro.registry import DATASETS

CHUNK = 256


def chunk_generator(name: str, split: str, seed: int, chunk: int) -> torch.Generator:
    # crc32, not hash(): Python's str hash changes between processes
    return torch.Generator().manual_seed(zlib.crc32(f"{name}|{split}|{seed}|{chunk}".encode()))


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    """(n, 1, 1) uniform draws in [lo, hi), shaped to broadcast over an image grid."""
    return (lo + (hi - lo) * torch.rand(n, generator=g)).view(n, 1, 1)


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    c = torch.arange(size, dtype=torch.float32) + 0.5
    return c.view(1, 1, size), c.view(1, size, 1)  # x (1, 1, W), y (1, H, 1)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


# ---------------------------------------------------------------- synth_colour10

COLOUR10_CLASSES = ["stripes_0deg", "stripes_90deg", "stripes_45deg", "stripes_135deg", "rings",
                    "checkerboard", "plus", "x_cross", "disc", "square_outline"]


def _motif(c: int, u, v, r, freq, phase) -> torch.Tensor:
    """Class c's ink coverage in [0, 1] on tilted motif coordinates u, v (radius units)."""
    def step(d):  # soft inside test, about 1.5 px wide
        return torch.sigmoid(d * r * 1.5)

    def wave(t):
        return torch.sigmoid(5.0 * torch.sin(2 * math.pi * freq * t + phase))

    rho = torch.sqrt(u * u + v * v)
    box = torch.maximum(u.abs(), v.abs())
    a, b = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
    w = 0.22
    if c < 4:  # gratings whose stripes run at 0, 90, 45, 135 degrees
        return wave((v, u, b, a)[c]) * step(1.0 - rho)
    if c == 4:
        return wave(rho) * step(1.0 - rho)
    if c == 5:
        checks = torch.sin(math.pi * freq * u + phase) * torch.sin(math.pi * freq * v)
        return torch.sigmoid(6.0 * checks) * step(1.0 - box)
    if c == 6:
        return torch.maximum(step(w - u.abs()), step(w - v.abs())) * step(1.0 - box)
    if c == 7:
        return torch.maximum(step(w - a.abs()), step(w - b.abs())) * step(1.0 - rho)
    if c == 8:
        return step(0.8 - rho)
    return step(0.95 - box) * step(box - 0.6)


def make_colour10(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ((n, 3, 32, 32) uint8, (n,) int64)."""
    size = 32
    cls = torch.randint(0, 10, (n,), generator=g)
    r = _u(g, n, 7.0, 12.0)
    cx, cy = _u(g, n, 7.0, 25.0), _u(g, n, 7.0, 25.0)
    tilt = _u(g, n, -0.25, 0.25)
    freq = _u(g, n, 1.4, 2.4)  # cycles per motif radius
    phase = _u(g, n, 0.0, 2 * math.pi)
    xs, ys = _grid(size)
    dx, dy = (xs - cx) / r, (ys - cy) / r
    u = torch.cos(tilt) * dx + torch.sin(tilt) * dy
    v = -torch.sin(tilt) * dx + torch.cos(tilt) * dy
    m = torch.empty(n, 1, size, size)
    for c in range(10):  # each class's motif on its own images only: 10x less work than all
        idx = torch.nonzero(cls == c).view(-1)
        if len(idx):
            m[idx, 0] = _motif(c, u[idx], v[idx], r[idx], freq[idx], phase[idx])

    bg = torch.rand(n, 3, 1, 1, generator=g)
    fg = torch.rand(n, 3, 1, 1, generator=g)
    low = (fg - bg).abs().mean(1, keepdim=True) < 0.3  # too little contrast: use the opposite colour
    fg = torch.where(low, 1.0 - bg, fg)
    angle = _u(g, n, 0.0, 2 * math.pi).unsqueeze(1)
    ramp = (torch.cos(angle) * (xs - 16) + torch.sin(angle) * (ys - 16)) / 32.0  # (n, 1, H, W)
    background = bg * (1.0 + _u(g, n, 0.0, 0.5).unsqueeze(1) * ramp)
    img = background * (1 - m) + fg * m
    img = img * _u(g, n, 0.7, 1.1).unsqueeze(1) + 0.03 * torch.randn(n, 3, size, size, generator=g)
    return _to_uint8(img), cls


# ---------------------------------------------------------------- synth_digits

_FONT = [  # 5x7 bitmaps, '#' = ink
    [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
    ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
    [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
    [".###.", "#...#", "....#", "..##.", "....#", "#...#", ".###."],
    ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
    ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
    ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."],
    ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."],
    [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."],
    [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."],
]


def _font_ink() -> torch.Tensor:
    """(10, 1, 36, 28) smooth ink density of each glyph (padded 9x7 bitmap, upsampled x4)."""
    bits = torch.tensor([[[c == "#" for c in row] for row in glyph] for glyph in _FONT],
                        dtype=torch.float32)
    bits = F.pad(bits, (1, 1, 1, 1)).unsqueeze(1)
    return _blur(F.interpolate(bits, scale_factor=4, mode="nearest"), 1.6)


def make_digits(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ((n, 1, 28, 28) uint8, (n,) int64)."""
    cls = torch.randint(0, 10, (n,), generator=g)
    src = _font_ink()[cls]
    scale = _u(g, n, 0.8, 1.08).view(n)
    aspect = _u(g, n, 0.85, 1.15).view(n)
    sy, sx = 0.88 * scale, 0.68 * scale * aspect  # glyph box / canvas, as fractions of [-1, 1]
    rot, shear = _u(g, n, -0.22, 0.22).view(n), _u(g, n, -0.25, 0.25).view(n)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (3.0 / 14.0)  # up to 3 px either way
    cos, sin = torch.cos(rot), torch.sin(rot)
    rotate = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear_m = torch.stack([torch.stack([torch.ones(n), shear], -1),
                           torch.stack([torch.zeros(n), torch.ones(n)], -1)], -2)
    stretch = torch.diag_embed(torch.stack([sx, sy], -1))
    forward = rotate @ shear_m @ stretch  # glyph coords -> canvas coords
    inverse = torch.linalg.inv(forward)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(-1))], -1)  # canvas -> glyph
    grid = F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)
    ink = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    level = _u(g, n, 0.22, 0.5).unsqueeze(1)  # lower level = thicker strokes
    ink = ((ink - level) / 0.18 + 0.5).clamp(0, 1)
    ink = _blur(ink, 0.6) * _u(g, n, 0.85, 1.0).unsqueeze(1)
    return _to_uint8(ink), cls


# ---------------------------------------------------------------- synth_rooms

def make_rooms(n: int, g: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-> ((n, 3, 64, 64) uint8, {"bed", "window"}: (n, 64, 64) bool visible-pixel masks)."""
    size = 64
    xs, ys = _grid(size)

    def rect(x0, x1, y0, y1):  # (n, H, W) bool, pixel centres inside [x0, x1) x [y0, y1)
        return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)

    def rgb(lo, hi):
        lo, hi = torch.tensor(lo).view(1, 3, 1, 1), torch.tensor(hi).view(1, 3, 1, 1)
        return lo + (hi - lo) * torch.rand(n, 3, 1, 1, generator=g)

    def paint(img, mask, colour):
        return torch.where(mask.unsqueeze(1), colour.expand(-1, -1, size, size), img)

    horizon = _u(g, n, 26, 38).round()
    wall = rgb((0.45, 0.4, 0.35), (0.95, 0.92, 0.88))
    floor = rgb((0.3, 0.2, 0.1), (0.65, 0.5, 0.35))
    shade = 1.0 - 0.25 * ys / size  # (1, H, 1): light from above
    img = torch.where((ys < horizon).unsqueeze(1), wall * shade.unsqueeze(1),
                      floor * (0.8 + 0.3 * (ys - horizon) / size).unsqueeze(1)).expand(n, 3, size, size)

    # windows: 0, 1 or 2 with P = 0.3, 0.45, 0.25; two windows sit in opposite halves
    draw = torch.rand(n, generator=g)
    count = (draw >= 0.3).long() + (draw >= 0.75).long()
    window = torch.zeros(n, size, size, dtype=torch.bool)
    for slot in range(2):
        w, h = _u(g, n, 10, 19).round(), _u(g, n, 10, 19).round()
        lo = torch.where(count.view(n, 1, 1) == 2, torch.full_like(w, 2 + 32 * slot), torch.full_like(w, 2))
        span = torch.where(count.view(n, 1, 1) == 2, 30 - w, 60 - w)
        x0 = (lo + torch.rand(n, 1, 1, generator=g) * span.clamp(min=0)).round()
        y0 = (3 + torch.rand(n, 1, 1, generator=g) * (horizon - h - 6).clamp(min=0)).round()
        present = (count > slot).view(n, 1, 1)
        outer = rect(x0, x0 + w, y0, y0 + h) & present
        t = _u(g, n, 1, 2.99).floor()  # frame thickness, px
        pane = rect(x0 + t, x0 + w - t, y0 + t, y0 + h - t)
        mx, my = (x0 + w / 2).floor(), (y0 + h / 2).floor()
        mullion = rect(mx, mx + 1, y0, y0 + h) | rect(x0, x0 + w, my, my + 1)
        sky = rgb((0.55, 0.7, 0.85), (0.9, 0.95, 1.0)) * (1.05 - 0.3 * ((ys - y0) / h).clamp(0, 1)).unsqueeze(1)
        frame = torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, rgb((0.9,) * 3, (1.0,) * 3),
                            rgb((0.2, 0.12, 0.05), (0.4, 0.28, 0.15)))
        img = torch.where((outer & pane & ~mullion).unsqueeze(1), sky.clamp(0, 1), img)
        img = paint(img, outer & ~(pane & ~mullion), frame)
        window |= outer

    # bed, seen from its foot: headboard against the wall, blanket over the floor, two pillows
    bw = _u(g, n, 22, 40).round()
    bx = (2 + torch.rand(n, 1, 1, generator=g) * (60 - bw)).round()
    base = horizon + _u(g, n, 2, 6).round()
    head = rect(bx, bx + bw, base - _u(g, n, 8, 15).round(), base)
    bottom = torch.minimum(base + _u(g, n, 14, 26).round(), torch.full_like(base, 62))
    blanket = rect(bx - 2, bx + bw + 2, base - 3, bottom)
    pillow_w = ((bw - 6) / 2).floor()
    pillows = (rect(bx + 2, bx + 2 + pillow_w, base - 6, base - 1)
               | rect(bx + bw - 2 - pillow_w, bx + bw - 2, base - 6, base - 1))
    img = paint(img, head, rgb((0.25, 0.12, 0.05), (0.55, 0.4, 0.3)))
    img = paint(img, blanket, rgb((0.1, 0.1, 0.1), (0.95, 0.95, 0.95)) * (1 - 0.25 * ((ys - base) / 30).clamp(0, 1)).unsqueeze(1))
    img = paint(img, pillows, rgb((0.85, 0.85, 0.8), (1.0, 1.0, 1.0)))
    bed = head | blanket | pillows
    window &= ~bed  # masks cover visible pixels only

    img = img * _u(g, n, 0.8, 1.1).unsqueeze(1) + 0.02 * torch.randn(n, 3, size, size, generator=g)
    return _to_uint8(img), {"bed": bed, "window": window}


# ---------------------------------------------------------------- registration

class GeneratedDataset:
    def __init__(self, spec: DatasetSpec, make, classes: list[str] | None = None):
        self.spec, self._make, self._classes = spec, make, classes

    def generate(self, split: str, n: int, seed: int) -> ImageSet:
        images, labels, masks = [], [], {}
        for chunk in range((n + CHUNK - 1) // CHUNK):
            out = self._make(CHUNK, chunk_generator(self.spec.name, split, seed, chunk))
            images.append(out[0])
            if isinstance(out[1], dict):
                for key, mask in out[1].items():
                    masks.setdefault(key, []).append(mask)
            else:
                labels.append(out[1])
        return ImageSet(
            images=torch.cat(images)[:n].contiguous(),
            labels=torch.cat(labels)[:n] if labels else None,
            name=self.spec.name, split=split, real=False,
            source=f"generated: {self.spec.name} {split} (seed {seed})",
            masks={k: torch.cat(v)[:n] for k, v in masks.items()}, classes=self._classes)

    def load(self, split: str, *, root: str = "data", download: bool = True, search=(),
             max_images: int | None = None, seed: int = 0) -> ImageSet:
        total = self.spec.splits[split]
        return self.generate(split, total if max_images is None else min(max_images, total), seed)


DATASETS.register("synth_colour10")(GeneratedDataset(DatasetSpec(
    "synth_colour10", 32, 3, 10, {"train": 20000, "valid": 2000, "test": 5000}, real=False,
    description="generated 32x32 RGB motifs, 10 classes (CIFAR-10 / SVHN stand-in)"),
    make_colour10, COLOUR10_CLASSES))
DATASETS.register("synth_digits")(GeneratedDataset(DatasetSpec(
    "synth_digits", 28, 1, 10, {"train": 50000, "valid": 10000, "test": 10000}, real=False,
    description="generated 28x28 grey digit glyphs (MNIST stand-in)"),
    make_digits, [str(d) for d in range(10)]))
DATASETS.register("synth_rooms")(GeneratedDataset(DatasetSpec(
    "synth_rooms", 64, 3, 0, {"train": 100000, "test": 2000}, real=False,
    description="generated 64x64 RGB bedroom scenes with exact bed/window masks (LSUN stand-in)"),
    make_rooms))


def stand_in(spec: DatasetSpec, split: str, n: int, seed: int) -> ImageSet:
    """Dry-run data of a dataset's shape: smooth random colour fields, random labels."""
    g = chunk_generator(spec.name, f"dry-run/{split}", seed, 0)
    coarse = torch.rand(n, spec.channels, 4, 4, generator=g)
    x = F.interpolate(coarse, size=(spec.image_size,) * 2, mode="bilinear", align_corners=False)
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    labels = torch.randint(0, spec.n_classes, (n,), generator=g) if spec.n_classes else None
    return ImageSet(images=_to_uint8(x), labels=labels, name=spec.name, split=split, real=False,
                    source=f"dry run: generated stand-in for {spec.name} {split} (seed {seed})")
