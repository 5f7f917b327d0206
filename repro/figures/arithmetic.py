"""Figs. 7/8: vector arithmetic on z, checked by an attribute classifier.

A concept is a set of required attribute values, e.g. {Smiling: 1, Male: 0}. Its exemplars are
chosen automatically (the paper chose them by hand): from a pool of generated samples, those
the attribute classifier finds most likely to have the concept (highest joint log-probability).
An equation A - B + C averages z over 3 exemplars per concept, and the result plus 8 copies with
uniform noise in [-noise, noise] are rendered. The intended attributes follow from the equation
(per attribute a - b + c, which must be 0 or 1). The number: the share of those samples that
the classifier says have all intended attributes, next to the same arithmetic on the exemplar
images' pixels. The turn vector (Fig. 8) is mean z(to) - mean z(from), walked from exemplars
of `from`; its number is the share of walks that end with the `to` attributes.

An overlay of rooms with windows still shows window pixels, so the attribute shares alone
cannot tell one coherent image from an overlay: the claim's numbers (`*_coherent`) count a
result only when a coherence judge (repro.figures.coherence) also calls it one image. Their
noise is the spread over the equations (walks) and over the judge's seeds (`judged_margin`).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from repro.errors import ReproError
from repro.figures.common import mean_se
from repro.figures.walk import line_z
from repro.utils.stats import binomial_se

Concept = Mapping[str, int]


def intended(equation: Sequence[Concept]) -> dict[str, int]:
    """A - B + C -> the attribute values the result should have."""
    a, b, c = equation
    names = set(a) | set(b) | set(c)
    out = {}
    for n in sorted(names):
        if not (n in a and n in b and n in c):
            raise ReproError(f"arithmetic equation: attribute {n!r} must be given in all three "
                             "concepts (A - B + C)")
        v = a[n] - b[n] + c[n]
        if v not in (0, 1):
            raise ReproError(f"arithmetic equation: attribute {n!r} gives {a[n]} - {b[n]} + {c[n]} "
                             f"= {v}, not 0 or 1; choose concepts whose difference is meaningful")
        out[n] = v
    return out


def concept_score(probs: torch.Tensor, names: Sequence[str], concept: Concept) -> torch.Tensor:
    """(N, K) probabilities -> (N,) log-probability that each image has the concept."""
    missing = [n for n in concept if n not in names]
    if missing:
        raise ReproError(f"unknown attribute(s) {missing}; valid names: {', '.join(names)}")
    p = probs.clamp(1e-6, 1 - 1e-6)
    score = torch.zeros(len(probs))
    for n, v in concept.items():
        k = list(names).index(n)
        score += (p[:, k] if v else 1 - p[:, k]).log()
    return score


def has(probs: torch.Tensor, names: Sequence[str], concept: Concept) -> torch.Tensor:
    """(N, K) probabilities -> (N,) bool: the classifier says every attribute of the concept holds."""
    ok = torch.ones(len(probs), dtype=torch.bool)
    for n, v in concept.items():
        ok &= (probs[:, list(names).index(n)] > 0.5) == bool(v)
    return ok


def exemplars(probs: torch.Tensor, names: Sequence[str], concept: Concept, per: int,
              repeats: int) -> list[torch.Tensor]:
    """Indices of `per` exemplars for each of `repeats` equations: ranks r, r + R, r + 2R, ...
    of the pool by concept score, so every repeat gets exemplars of similar confidence."""
    need = per * repeats
    if len(probs) < need:
        raise ReproError(f"the exemplar pool has {len(probs)} samples, fewer than "
                         f"{need}; raise figures.arithmetic.pool")
    order = concept_score(probs, names, concept).argsort(descending=True)[:need]
    return [order[r::repeats] for r in range(repeats)]


def z_arithmetic(z: torch.Tensor, picks: Sequence[torch.Tensor], n_noisy: int, noise: float,
                 seed: int) -> torch.Tensor:
    """Exemplar z of A, B, C -> (1 + n_noisy, Z): the result and noisy copies around it."""
    a, b, c = (z[i].mean(0) for i in picks)
    result = a - b + c  # (Z,)
    g = torch.Generator().manual_seed(seed)
    jitter = (torch.rand(n_noisy, len(result), generator=g) * 2 - 1) * noise
    return torch.cat([result[None], result[None] + jitter.to(result.device)])


def pixel_arithmetic(images01: torch.Tensor, picks: Sequence[torch.Tensor]) -> torch.Tensor:
    """The same arithmetic on the exemplar images' mean pixels -> (1, C, H, W) in [0, 1]."""
    a, b, c = (images01[i].mean(0) for i in picks)
    return (a - b + c).clamp(0, 1)[None]


def run_equation(z: torch.Tensor, images01: torch.Tensor, probs: torch.Tensor, names: Sequence[str],
                 equation: Sequence[Concept], render01: Callable[[torch.Tensor], torch.Tensor],
                 classify: Callable[[torch.Tensor], torch.Tensor], per: int, repeats: int,
                 n_noisy: int, noise: float, seed: int,
                 coherent: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """The whole Fig. 7 measurement on a pool (z, rendered images, classifier probabilities);
    `coherent`: images -> (N,) bool, the coherence judge.

    -> {"z_share", "pixel_share" (attributes only), "z_coherent", "pixel_coherent" (attributes
    and coherent), "z_coherent_se" over the equations, "pixel_coherent_count" (equations whose
    one pixel result has both), "prior", "intended", "rows": [per repeat: {"picks",
    "z_images", "pixel_image", "z_ok", "pixel_ok", "z_coh", "pixel_coh"}]}.
    """
    target = intended(equation)
    per_concept = [exemplars(probs, names, concept, per, repeats) for concept in equation]
    rows = []
    for r in range(repeats):
        picks = [ex[r] for ex in per_concept]
        zs = z_arithmetic(z, picks, n_noisy, noise, seed + r)
        z_images = render01(zs)
        pixel = pixel_arithmetic(images01, picks)
        z_ok, pixel_ok = has(classify(z_images), names, target), has(classify(pixel), names, target)
        rows.append({"picks": picks, "z_images": z_images, "pixel_image": pixel, "z_ok": z_ok,
                     "pixel_ok": pixel_ok, "z_coh": z_ok & coherent(z_images),
                     "pixel_coh": pixel_ok & coherent(pixel)})
    out = {"prior": has(probs, names, target).float().mean().item(), "intended": target, "rows": rows}
    for key, name in (("z_ok", "z_share"), ("pixel_ok", "pixel_share"), ("z_coh", "z_coherent"),
                      ("pixel_coh", "pixel_coherent")):
        out[name] = torch.stack([r[key].float().mean() for r in rows]).mean().item()
    # over the equations (the noisy copies of one result are not independent draws)
    per_eq = torch.stack([r["z_coh"].float().mean() for r in rows])  # (repeats,)
    out["z_coherent_se"] = max(binomial_se(out["z_coherent"], repeats),
                               mean_se(per_eq) if repeats > 1 else 0.0)
    out["pixel_coherent_count"] = int(sum(int(r["pixel_coh"].sum()) for r in rows))
    return out


def judged_margin(rows: Sequence[dict], coherent: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """`run_equation`'s rows judged again by another coherence judge (one member of the
    ensemble) -> its z coherent share - pixel coherent share: the claim's margin as that
    judge alone would give it."""
    z = torch.stack([(r["z_ok"] & coherent(r["z_images"])).float().mean() for r in rows]).mean()
    pixel = sum(int((r["pixel_ok"] & coherent(r["pixel_image"])).sum()) for r in rows) / len(rows)
    return z.item() - pixel


def turn_vector(z: torch.Tensor, probs: torch.Tensor, names: Sequence[str], start: Concept,
                end: Concept, per: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (direction (Z,), start exemplar indices): mean z(end) - mean z(start)."""
    begin = exemplars(probs, names, start, per, 1)[0]
    finish = exemplars(probs, names, end, per, 1)[0]
    return z[finish].mean(0) - z[begin].mean(0), begin


def run_turn(z: torch.Tensor, probs: torch.Tensor, names: Sequence[str], start: Concept,
             end: Concept, rows: int, frames: int, render01: Callable[[torch.Tensor], torch.Tensor],
             classify: Callable[[torch.Tensor], torch.Tensor],
             coherent: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """Fig. 8: walk `rows` exemplars of `start` along the turn vector in `frames` steps.

    -> {"frames": (rows, frames, C, H, W), "turned_rate": share of walks whose last frame has
    the `end` attributes and is coherent, "walks": rows, "last": the last frames, "turned":
    (rows,) bool, the last frame has the `end` attributes (whatever its coherence)}."""
    direction, begin = turn_vector(z, probs, names, start, end, rows)
    lines = line_z(z[begin], direction, frames)  # (R, T, Z)
    R, T = lines.shape[:2]
    images = render01(lines.flatten(0, 1))
    grid = images.view(R, T, *images.shape[1:])
    last = grid[:, -1]
    attributes = has(classify(last), names, end)
    rate = (attributes & coherent(last)).float().mean().item()
    return {"frames": grid, "turned_rate": rate, "walks": R, "last": last, "turned": attributes}
