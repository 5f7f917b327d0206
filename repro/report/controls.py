"""Controls: every claim check and the table verdict run on constructed models.

For each check, a tiny model for which the claim holds by construction (positive control) and
one for which it fails (negative control) go through the same measuring functions the
figures stage uses (repro.figures) and the same verdict rule as the report (repro.report.claims,
repro.report.build.verdict). A check that cannot say `supports` on its positive and
`contradicts` on its negative control cannot tell a true claim from a false one. The tests
(tests/test_controls.py) and the report's Controls table read `run_controls()`.

Everything is small and seeded: the controls run in seconds on a CPU and give the same rows
on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from repro.eval.nearest import StreamingNN
from repro.figures import arithmetic as arith
from repro.figures import guided, memorisation, walk, windows
from repro.published.protocol import comparable
from repro.report.build import NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED, Measured, verdict
from repro.report.claims import CONTRADICTS, SUPPORTS, ClaimCheck, claim_check
from repro.report.inputs import MeasuredCell
from repro.tables import get_protocol, load_published


@dataclass(frozen=True)
class Control:
    check: str  # which check, as the report names it
    positive: str  # the model for which the claim holds
    negative: str  # the model for which it fails
    pos: ClaimCheck
    neg: ClaimCheck
    expected: tuple[str, str] = (SUPPORTS, CONTRADICTS)

    @property
    def passed(self) -> bool:
        return (self.pos.verdict, self.neg.verdict) == self.expected


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- Figs. 2/3: memorisation

def _memorisation(holds: bool) -> ClaimCheck:
    train = torch.rand(400, 3, 8, 8, generator=_g(1))
    heldout = torch.rand(200, 3, 8, 8, generator=_g(2))
    if not holds:  # a generator that returns training images (with a trace of noise)
        samples = (train[:200] + 0.01 * torch.rand(200, 3, 8, 8, generator=_g(3))).clamp(0, 1)
    else:  # one that draws new images from the data's distribution
        samples = torch.rand(200, 3, 8, 8, generator=_g(3))
    res = memorisation.memorisation(samples, train, heldout)
    key = "fig3/lsun_samples_final/nn_train_over_heldout_l2"
    return claim_check("fig3", {key: res["ratio"], f"{key}_se": res["ratio_se"]}, {})


# ---------------------------------------------------------------- Fig. 4: walks

def _walk(holds: bool) -> ClaimCheck:
    W = torch.randn(8, 64, generator=_g(4)) / 8 ** 0.5
    pattern = torch.ones(64)

    def G(z):  # (N, 8) -> (N, 64): smooth in z, plus a planted step where z_0 crosses 0
        return torch.tanh(z @ W) + (0 if holds else 3.0 * (z[:, :1] > 0).float() * pattern)

    rows, anchors, steps = 64, 9, 4
    zs = walk.walk_z(torch.randn(rows, anchors, 8, generator=_g(5)), steps)  # (R, T, 8)
    frames = G(zs.flatten(0, 1)).view(rows, zs.shape[1], -1)
    sm = walk.smoothness(walk.step_sizes(frames), 4.0)
    return claim_check("fig4", {"fig4/latent_walk/walks_with_jump": walk.jump_walks(set(sm["jumps"])),
                                "fig4/latent_walk/walks": rows,
                                "fig4/latent_walk/n_jumps": len(sm["jumps"])}, {})


# ---------------------------------------------------------------- Fig. 5: guided backprop

class _D(nn.Module):
    """One conv layer + ReLU: `layer_outputs` as repro.figures.guided reads it."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.conv = nn.Conv2d(3, weight.shape[0], 3, padding=1, bias=False)
        self.act = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.copy_(weight)

    def layer_outputs(self, x):
        return [self.act(self.conv(x))]


def _objects(n: int = 64, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noisy images with a red square (the object, masked) and a green square (not)."""
    g = _g(6)
    x = 0.2 * torch.rand(n, 3, size, size, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        (ox, oy), (dx, dy) = torch.randint(0, size - 4, (2, 2), generator=g).tolist()
        x[i, 0, oy:oy + 4, ox:ox + 4] = 1.0
        masks[i, oy:oy + 4, ox:ox + 4] = True
        x[i, 1, dy:dy + 4, dx:dx + 4] = 1.0
    return x, masks


def _guided(on_objects: bool) -> ClaimCheck:
    x, masks = _objects()
    w = torch.zeros(4, 3, 3, 3)
    w[:, 0 if on_objects else 1] = 1.0  # features of the red object, or of the green distractor
    trained = guided.analyse(_D(w), x, masks, 4, 4)
    randoms = [guided.analyse(_D(torch.randn(4, 3, 3, 3, generator=_g(10 + k))), x, masks, 4, 4)
               for k in range(3)]
    random_mass = sum(r["mass"] for r in randoms) / len(randoms)
    key = "fig5/guided_backprop/trained_over_random_concentration"
    return claim_check("fig5", {key: trained["mass"] / random_mass,
                                f"{key}_se": guided.ratio_se(trained, randoms),
                                "fig5/guided_backprop/object_mass_trained": trained["mass"],
                                "fig5/guided_backprop/object_mass_random": random_mass}, {})


# ---------------------------------------------------------------- Fig. 6: window maps

class _Hidden(nn.Module):
    """z (N, 8) -> (N, 8, 8, 8) maps: 0-1 draw the window (z_0 > 0) when `carried`, 2-7 other
    content everywhere."""

    def __init__(self, carried: bool):
        super().__init__()
        self.carried = carried
        self.register_buffer("patterns", 0.3 * torch.rand(8, 8, 8, generator=_g(7)))
        self.register_buffer("window", torch.zeros(8, 8))
        self.window[1:4, 1:4] = 1.0

    def forward(self, z):
        other = F.relu(z[:, 1:9, None, None]) * self.patterns  # (N, 8, 8, 8)
        if self.carried:
            win = (z[:, :1, None, None] > 0).float() * self.window  # (N, 1, 8, 8)
            other = torch.cat([win, win, other[:, 2:]], 1)
        return other


class _WindowG(nn.Module):
    """Either maps 0-1 carry the window (`carried`), or a path around the maps draws it."""

    def __init__(self, carried: bool):
        super().__init__()
        self.hidden = _Hidden(carried)

    def forward(self, z):
        h = self.hidden(z)  # (N, 8, 8, 8)
        img = 0.5 * h[:, 2:].mean(1) + (h[:, 0] + h[:, 1] if self.hidden.carried
                                        else (z[:, :1, None] > 0).float() * self.hidden.window)
        return img.clamp(0, 1)[:, None]  # (N, 1, 8, 8)


def _detect(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0, 1:4, 1:4].mean((1, 2)) > 0.7


def _windows(carried: bool) -> ClaimCheck:
    G = _WindowG(carried)
    z = torch.randn(150, 9, generator=_g(8))
    images, acts = windows.layer_activations(G, G.hidden, z, 0)
    boxes = [[(1, 1, 4, 4)] if d else [] for d in _detect(images)]
    X, y, ids = windows.training_cells(acts, boxes, 8, 0)
    fit = windows.window_maps(X, y, ids, 0)
    zt = torch.randn(256, 9, generator=_g(9))
    res = windows.removal(G, G.hidden, fit["dropped"], acts.shape[1], zt, _detect, 5, 0)
    accuracy = (_detect(G(zt)) == (zt[:, 0] > 0)).float().mean().item()
    base = "fig6/window_removal/"
    return claim_check("fig6", {base + "window_rate_before": res["before"],
                                base + "window_rate_after": res["after"],
                                base + "window_rate_after_random": sum(res["random"]) / len(res["random"]),
                                base + "after_over_random": res["after_over_random"],
                                base + "after_over_random_se": res["after_over_random_se"],
                                "fig6/window_detector/accuracy": accuracy}, {})


# ---------------------------------------------------------------- Figs. 7/8: arithmetic, turn

NAMES = ["window", "bed_left"]


def _bucket(v: torch.Tensor) -> torch.Tensor:
    return (v > -0.43).long() + (v > 0.43).long()  # three equally likely positions


def _rooms(linear: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """z (N, 4) -> (N, 1, 16, 16) crisp rooms: a window (top) and a bed (bottom, left or right).

    linear: window iff z_0 > 0, bed left iff z_1 > 0, positions moving with z_2, z_3 (so pixel
    averages of exemplars are overlays); else: each attribute iff |z_i| is large (not linear
    in z) and objects at fixed places (pixel arithmetic is exact)."""
    t = 0.6745  # the median of |N(0, 1)|

    def render(z):
        window = z[:, 0] > 0 if linear else z[:, 0].abs() > t
        left = z[:, 1] > 0 if linear else z[:, 1].abs() > t
        wx = 2 + 5 * _bucket(z[:, 3]) if linear else torch.full((len(z),), 7)
        bx = _bucket(z[:, 2]) if linear else torch.ones(len(z), dtype=torch.long)
        out = torch.zeros(len(z), 1, 16, 16)
        for i in range(len(z)):
            if window[i]:
                out[i, 0, 1:5, wx[i]:wx[i] + 4] = 1.0
            x0 = int(bx[i]) + (0 if left[i] else 9)
            out[i, 0, 10:14, x0:x0 + 5] = 1.0
        return out
    return render


def _classify(x: torch.Tensor) -> torch.Tensor:
    window = (x[:, 0, 1:5].flatten(1).sum(1) / 16).clamp(0, 1)
    left, right = x[:, 0, 10:14, :8].flatten(1).sum(1), x[:, 0, 10:14, 8:].flatten(1).sum(1)
    return torch.stack([window, (0.5 + (left - right) / 40).clamp(0, 1)], 1)  # (N, 2)


def _coherent(x: torch.Tensor) -> torch.Tensor:
    """One crisp scene: almost no pixel is a blend of several (an overlay's ghosts are)."""
    return ((x > 0.1) & (x < 0.9)).flatten(1).float().mean(1) < 0.01


def _judges(render, z, coherent: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
    x = render(z)
    truth = _classify(x) > 0.5  # the crisp renders' attributes, as drawn
    attr = ((_classify(x) > 0.5) == truth).float().mean().item()
    # Fig. 7's pixel arithmetic on random triples of 3 renders each: the overlays to refuse
    picks = torch.randint(0, len(x), (len(x), 3, 3), generator=_g(17))
    fake = torch.cat([arith.pixel_arithmetic(x, list(p)) for p in picks])
    right = torch.cat([coherent(x), ~coherent(fake)])
    return {"fig7/attribute_classifier/accuracy": attr,
            "fig7/coherence_judge/errors": 1 - right.float().mean().item(),
            "fig7/coherence_judge/tested": len(right)}


def _arithmetic(linear: bool, coherent: Callable[[torch.Tensor], torch.Tensor] = _coherent
                ) -> ClaimCheck:
    """`coherent`: the coherence judge (default: the crisp-pixel rule; the tests also pass a
    judge trained as the figures stage trains it)."""
    render = _rooms(linear)
    z = torch.randn(600, 4, generator=_g(11))
    x = render(z)
    res = arith.run_equation(z, x, _classify(x), NAMES,
                             [{"window": 1, "bed_left": 1}, {"window": 0, "bed_left": 1},
                              {"window": 0, "bed_left": 0}],
                             render, _classify, 3, 16, 8, 0.25, 0, coherent)
    base = "fig7/vector_arithmetic/"
    values = {base + "coherent_agreement": res["z_coherent"],
              base + "coherent_agreement_se": res["z_coherent_se"],
              base + "pixel_coherent_results": res["pixel_coherent_count"],
              base + "equations": 16,
              base + "attribute_agreement": res["z_share"],
              base + "pixel_attribute_agreement": res["pixel_share"]}
    return claim_check("fig7", values, _judges(render, z, coherent))


def _turn(linear: bool) -> ClaimCheck:
    render = _rooms(linear)
    z = torch.randn(600, 4, generator=_g(12))
    x = render(z)
    res = arith.run_turn(z, _classify(x), NAMES, {"bed_left": 1}, {"bed_left": 0}, 32, 5,
                         render, _classify, _coherent)
    return claim_check("fig8", {"fig8/turn_vector/turned_rate": res["turned_rate"],
                                "fig8/turn_vector/walks": res["walks"]},
                       _judges(render, z, _coherent))


# ---------------------------------------------------------------- Fig. 9: digits

def _digits(labelled: bool) -> ClaimCheck:
    centres = 3 * torch.randn(10, 16, generator=_g(13))
    y_test = torch.arange(10).repeat(50)
    test = centres[y_test] + torch.randn(len(y_test), 16, generator=_g(14))
    y_s = torch.arange(10).repeat(100)
    samples = centres[y_s] + torch.randn(len(y_s), 16, generator=_g(15))
    if not labelled:  # samples that do not look like their class
        y_s = y_s[torch.randperm(len(y_s), generator=_g(16))]
    nn_ = StreamingNN(test)
    nn_.update(samples, y_s)
    err = 100.0 * (nn_.predict() != y_test).float().mean().item()
    return claim_check("fig9", {}, {"table3/dcgan/err@50k": err,
                                    "table3/dcgan/err@50k/n_test": len(y_test)})


# ---------------------------------------------------------------- tables

def _table_cell(offset_bands: float, changed: bool = False) -> str:
    pub = load_published()["table3/dcgan/err@50k"]
    run = {"real_data": True, "dry_run": False, "preprocessing": [], "dataset": "mnist",
           "n_train": 50_000, "n_test": 10_000, "n_samples": 50_000, "checkpoint_dry_run": False}
    if changed:
        run["n_samples"] = 5_000
    ok = comparable(True, get_protocol("table3").diff("checkpoint", "err@50k", run))
    cell = MeasuredCell(value=pub.value + offset_bands * pub.band, comparable=ok, unit=pub.unit,
                        compares_to=pub.id)
    return verdict(pub, Measured("control", pub.id, cell))[0]


@dataclass(frozen=True)
class TableControl:
    case: str
    verdict: str
    expected: str

    @property
    def passed(self) -> bool:
        return self.verdict == self.expected


def table_controls() -> list[TableControl]:
    cases = [("at the published value", 0.0, False, REPRODUCED),
             ("inside the band (0.99 x its half-width off)", 0.99, False, REPRODUCED),
             ("just outside the band (1.01 x off)", 1.01, False, NOT_REPRODUCED),
             ("below the band (-1.5 x off)", -1.5, False, NOT_REPRODUCED),
             ("at the published value, n_samples 5,000 (protocol field changed)", 0.0, True,
              NOT_COMPARABLE)]
    return [TableControl(case, _table_cell(off, changed), want) for case, off, changed, want in cases]


CONTROLS: tuple[tuple[str, str, str, Callable[[bool], ClaimCheck]], ...] = (
    ("Figs. 2/3 memorisation", "new draws from the data's distribution",
     "returns training images", _memorisation),
    ("Fig. 4 latent walks", "smooth in z", "a planted step where z_0 crosses 0", _walk),
    ("Fig. 5 guided backprop", "features of the masked objects",
     "features of an unmasked distractor", _guided),
    ("Fig. 6 window maps", "two maps draw the windows", "windows drawn around the maps",
     _windows),
    ("Fig. 7 vector arithmetic", "attributes linear in z, objects move",
     "attributes not linear in z, objects fixed (pixel arithmetic exact)", _arithmetic),
    ("Fig. 8 turn vector", "bed side linear in z", "bed side not linear in z", _turn),
    ("Fig. 9 digits (1-NN)", "samples of their class", "samples with shuffled classes", _digits),
)


@lru_cache(maxsize=1)
def run_controls() -> tuple[Control, ...]:
    """Every claim check on its positive (holds) and negative (fails) control."""
    torch.manual_seed(0)
    out = []
    for check, positive, negative, build in CONTROLS:
        out.append(Control(check, positive, negative, build(True), build(False)))
    return tuple(out)
