"""Fig. 6: make the generator forget windows.

1. Window boxes on generated samples: from a window detector trained on exact masks (generated
   rooms) or from a hand-filled annotation file (the `paper` profile, see `load_boxes`).
2. Activations of one G layer (`layer`: index into G.blocks; the paper's "second highest
   convolution layer"). Grid cells whose centre lies inside a box are positives; as many
   random cells of the same image outside every box are negatives. A logistic regression
   separates them (accuracy on held-out samples).
3. Every feature map whose weight is > 0 is zeroed at all locations (`dropped`), and the same z
   are rendered with and without the drop, and with as many randomly chosen maps dropped
   (`random_draws` draws): `removal`. The renders use the BN statistics of an undropped batch
   (common.frozen_statistics): on batch statistics the next BN layer re-normalises the
   dropped activations and undoes much of the drop. The number is the share of samples the
   window detector says show a window; the claim's number is that share after dropping the
   window maps over the mean share after dropping random maps (1: the window maps are no
   more about windows than any maps; 0: only they remove windows).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from repro.errors import ReproError
from repro.figures.common import Box, boxes_mask
from repro.utils.stats import binomial_se


def g_layer(G: nn.Module, layer: int) -> nn.Module:
    blocks = getattr(G, "blocks", None)
    if blocks is None or not -len(blocks) <= layer < len(blocks) - 1:
        n = len(blocks) if blocks is not None else 0
        raise ReproError(f"figures.windows.layer must index one of G's {max(n - 1, 0)} hidden conv "
                         f"blocks (0..{n - 2}), got {layer}")
    return blocks[layer]


@contextmanager
def capture(module: nn.Module, store: list) -> Iterator[None]:
    handle = module.register_forward_hook(lambda m, i, out: store.append(out.detach()))
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def drop_maps(module: nn.Module, channels: Sequence[int]) -> Iterator[None]:
    """Zero `channels` of `module`'s output at every location while the block runs."""
    idx = torch.as_tensor(list(channels), dtype=torch.long)

    def hook(m, inputs, out):
        out = out.clone()
        out[:, idx.to(out.device)] = 0
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def layer_activations(render: Callable[[torch.Tensor], torch.Tensor], module: nn.Module,
                      z: torch.Tensor, reference: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (images, activations (N, C, h, w)) of `module` while rendering z.

    `render` pads every batch with `reference` random z after the real ones (common.render);
    their activations are dropped here.
    """
    store: list[torch.Tensor] = []
    with capture(module, store):
        images = render(z)
    acts = torch.cat([a[:len(a) - reference] for a in store])
    if len(acts) != len(z):
        raise ReproError(f"captured {len(acts)} activations for {len(z)} samples; the render "
                         "padding does not match `reference`")
    return images, acts.cpu()


def training_cells(acts: torch.Tensor, boxes: Sequence[Sequence[Box]], image_size: int,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (X (M, C), y (M,), image id (M,)): in-box cells positive, same-image random cells negative."""
    g = torch.Generator().manual_seed(seed)
    grid = acts.shape[-1]
    xs, ys, ids = [], [], []
    for i, bs in enumerate(boxes):
        if not bs:
            continue
        inside = boxes_mask(bs, image_size, grid).flatten()
        pos = torch.nonzero(inside).flatten()
        neg_pool = torch.nonzero(~inside).flatten()
        if len(pos) == 0 or len(neg_pool) == 0:
            continue
        neg = neg_pool[torch.randperm(len(neg_pool), generator=g)[:len(pos)]]
        a = acts[i].flatten(1).t()  # (h*w, C)
        xs += [a[pos], a[neg]]
        ys += [torch.ones(len(pos)), torch.zeros(len(neg))]
        ids += [torch.full((len(pos) + len(neg),), i)]
    if not xs:
        raise ReproError("no window boxes to learn from: no sample has a box; render more "
                         "samples (figures.windows.n_samples) or annotate more boxes")
    return torch.cat(xs), torch.cat(ys), torch.cat(ids)


def window_maps(X: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, seed: int,
                C: float = 1.0, holdout: float = 0.25) -> dict:
    """Logistic regression on raw activations -> {"dropped": channels with weight > 0 in the
    fit on all cells, "accuracy": held-out accuracy of the same regression fitted without a
    `seed`-drawn `holdout` share of the images (samples split by image), "weights": (C,)}.

    The maps dropped come from every cell, so `seed` moves only the accuracy estimate."""
    from sklearn.linear_model import LogisticRegression

    if len(torch.unique(y)) < 2:
        raise ReproError("window logistic regression needs both in-box and out-of-box cells")
    model = LogisticRegression(C=C, max_iter=2000).fit(X.numpy(), y.numpy())
    w = torch.as_tensor(model.coef_[0], dtype=torch.float32)
    images = torch.unique(ids)
    rng = np.random.default_rng(seed)
    test_images = torch.as_tensor(rng.permutation(images.numpy())[:max(1, int(holdout * len(images)))])
    test = torch.isin(ids, test_images)
    acc = float("nan")
    if len(torch.unique(y[~test])) == 2:
        held = LogisticRegression(C=C, max_iter=2000).fit(X[~test].numpy(), y[~test].numpy())
        acc = float(held.score(X[test].numpy(), y[test].numpy()))
    return {"dropped": torch.nonzero(w > 0).flatten().tolist(), "accuracy": acc, "weights": w}


def removal(render: Callable[[torch.Tensor], torch.Tensor], module: nn.Module,
            dropped: Sequence[int], n_maps: int, z: torch.Tensor,
            detect: Callable[[torch.Tensor], torch.Tensor], draws: int, seed: int) -> dict:
    """Window rates of `render(z)` as is, with `dropped` maps of `module` zeroed, and with as
    many of its `n_maps` maps, chosen at random, zeroed (`draws` draws under `seed`).

    `detect`: images -> (N,) bool "shows a window". -> {"before", "after", "random" (draws,),
    "after_over_random", "after_over_random_se", "after_images", "before_images"}; the se
    combines the binomial noise of `after` over the samples with the spread of the random
    draws (delta method).
    """
    before_images = render(z)
    with drop_maps(module, dropped):
        after_images = render(z)
    rate = lambda x: detect(x).float().mean().item()  # noqa: E731
    g = torch.Generator().manual_seed(seed)
    randoms = []
    for _ in range(draws):
        pick = torch.randperm(n_maps, generator=g)[:len(dropped)].tolist()
        with drop_maps(module, pick):
            randoms.append(rate(render(z)))
    before, after = rate(before_images), rate(after_images)
    r = torch.tensor(randoms, dtype=torch.float64)
    mean_r = max(r.mean().item(), 1e-12)
    se_a = binomial_se(after, len(z))
    se_r = (r.std().item() / draws ** 0.5) if draws > 1 else binomial_se(mean_r, len(z))
    ratio = after / mean_r
    se = ((se_a / mean_r) ** 2 + (ratio * se_r / mean_r) ** 2) ** 0.5
    return {"before": before, "after": after, "random": randoms, "after_over_random": ratio,
            "after_over_random_se": se, "before_images": before_images, "after_images": after_images}


# ---------------------------------------------------------------- annotation file (paper profile)

ANNOTATION_HELP = ('expected {"seed": <int>, "n_samples": <int>, "boxes": {"<sample id>": '
                   '[[x0, y0, x1, y1], ...], ...}} with pixel coordinates of the 64x64 sample '
                   '(x1, y1 exclusive); render the samples with `python -m repro.figures.annotate`')


def load_boxes(path: str | Path, n_samples: int, seed: int, image_size: int) -> list[list[Box]]:
    """The hand-drawn window boxes: one list per rendered sample id (empty when unannotated).

    Every problem in the file is collected into one ReproError, so a user fixes all at once.
    """
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"window annotation file {path} not found; render the samples with "
                         f"`python -m repro.figures.annotate` and draw boxes; {ANNOTATION_HELP}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReproError(f"{path} is not valid JSON ({err}); {ANNOTATION_HELP}") from None
    problems = []
    if not isinstance(data, dict) or not isinstance(data.get("boxes"), dict):
        raise ReproError(f"{path}: no 'boxes' mapping; {ANNOTATION_HELP}")
    if data.get("seed") != seed or data.get("n_samples") != n_samples:
        problems.append(f"it was rendered with seed {data.get('seed')!r} / n_samples "
                        f"{data.get('n_samples')!r} but the profile asks for seed {seed} / "
                        f"n_samples {n_samples} (the ids would name other samples)")
    out: list[list[Box]] = [[] for _ in range(n_samples)]
    for key, boxes in data["boxes"].items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < n_samples):
            problems.append(f"sample id {key!r} is not in 0..{n_samples - 1}")
            continue
        if not isinstance(boxes, list):
            problems.append(f"sample {key}: boxes must be a list of [x0, y0, x1, y1]")
            continue
        for b in boxes:
            ok = (isinstance(b, list) and len(b) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in b)
                  and 0 <= b[0] < b[2] <= image_size and 0 <= b[1] < b[3] <= image_size)
            if not ok:
                problems.append(f"sample {key}: box {b!r} is not 4 integers with "
                                f"0 <= x0 < x1 <= {image_size} and 0 <= y0 < y1 <= {image_size}")
            else:
                out[int(key)].append(tuple(b))
    if problems:
        raise ReproError(f"{path}: " + "; ".join(problems) + f"; {ANNOTATION_HELP}")
    if not any(out):
        raise ReproError(f"{path} holds no boxes; draw window boxes on some samples; {ANNOTATION_HELP}")
    return out


def box_masks(boxes: Sequence[Sequence[Box]], image_size: int) -> torch.Tensor:
    """-> (N, H, W) bool: the boxes as masks (to train the `paper` profile's window detector)."""
    return torch.stack([boxes_mask(bs, image_size) for bs in boxes])
