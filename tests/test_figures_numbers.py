"""Each figure number on tiny cases whose answer is known."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from repro.errors import ReproError
from repro.figures import arithmetic as arith
from repro.figures import guided, memorisation, walk, windows
from repro.figures.common import mask_boxes


# ---------------------------------------------------------------- Fig. 4 walks

def _frames(step_sizes):
    """One row of 1-d 'images' whose consecutive steps are the given sizes."""
    pos = torch.cat([torch.zeros(1), torch.tensor(step_sizes).cumsum(0)])
    return pos.view(1, -1, 1)


def test_walk_with_planted_jump_is_flagged():
    res = walk.smoothness(walk.step_sizes(_frames([1.0] * 10 + [20.0] + [1.0] * 10)), jump_ratio=4.0)
    assert res["jumps"] == [(0, 10)]
    assert res["max_ratio"] == pytest.approx(20.0)


def test_smooth_walk_is_not_flagged():
    zs = walk.walk_z(torch.randn(3, 9, 5, generator=torch.Generator().manual_seed(0)), steps=4)
    assert zs.shape == (3, 33, 5)
    res = walk.smoothness(walk.step_sizes(zs), jump_ratio=4.0)  # G = identity: linear in z
    assert res["jumps"] == [] and res["max_ratio"] < 4.0


def test_walk_through_a_step_function_generator_is_flagged():
    anchors = torch.tensor([[[-1.0], [1.0]]])
    zs = walk.walk_z(anchors, steps=20)
    images = torch.where(zs > 0.05, 1.0, 0.0) + 0.01 * zs  # a sharp edge in z
    assert walk.smoothness(walk.step_sizes(images), 4.0)["jumps"]


# ---------------------------------------------------------------- Figs. 2/3 memorisation

def _images(n, seed):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_memorisation_ratio():
    train, heldout, fresh = _images(200, 0), _images(50, 1), _images(50, 2)
    near_one = memorisation.memorisation(fresh, train, heldout)["ratio"]
    assert 0.9 < near_one < 1.1
    copies = memorisation.memorisation(train[:50] + 0.001, train, heldout)
    assert copies["ratio"] < 0.05
    assert torch.equal(copies["sample_index"], torch.arange(50))


# ---------------------------------------------------------------- Fig. 5 guided backprop

class _OneLayerD(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv, self.act = conv, nn.LeakyReLU(0.2)

    def layer_outputs(self, x):
        return [self.act(self.conv(x))]


def _scenes(n=16, size=32):
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.rand(n, 3, size, size, generator=g) - 0.5
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        r, c = torch.randint(2, size - 10, (2,), generator=g).tolist()
        masks[i, r:r + 8, c:c + 8] = True
    x[:, 0][masks] = 1.0  # a red square on dull noise
    return x, masks


def test_guided_backprop_mass_lands_on_the_planted_object():
    x, masks = _scenes()
    detector = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        detector.weight.zero_()
        detector.weight[:, 0] = 1.0  # both features: "red here"
    planted = guided.analyse(_OneLayerD(detector), x, masks, features=2, top=4)
    torch.manual_seed(0)
    random = guided.analyse(_OneLayerD(nn.Conv2d(3, 2, 3, padding=1, bias=False)), x, masks, 2, 4)
    assert planted["mass"] > 0.9
    assert random["mass"] < planted["mass"]
    assert planted["grads"].shape == (2, 4, 3, 32, 32)


def test_guided_relu_passes_only_positive_gradient_where_input_was_positive():
    x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    m = nn.Sequential(nn.LeakyReLU(0.2))
    with guided.guided(m):
        (m(x) * torch.tensor([5.0, 5.0, -5.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 5.0, 0.0]


# ---------------------------------------------------------------- Fig. 6 window removal

class _ToyG(nn.Module):
    """Block 0 makes 6 maps at 8x8: map 0 marks a window (where z says), 1-5 noise; block 1
    paints a bright window wherever map 0 is on."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_Maps(), _Paint(), nn.Identity()])

    def forward(self, z, y=None):
        h = z
        for b in self.blocks:
            h = b(h)
        return h


class _Maps(nn.Module):
    def forward(self, z):
        n = len(z)
        maps = torch.rand(n, 6, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5
        col = (z[:, 0].abs() * 6).long().clamp(0, 5)
        window = torch.zeros(n, 8, 8)
        for i in range(n):
            if z[i, 1] > 0:
                window[i, 1:4, col[i]:col[i] + 3] = 1.0
        maps[:, 0] = window
        return maps


class _Paint(nn.Module):
    def forward(self, maps):
        on = nn.functional.interpolate(maps[:, :1], scale_factor=4)  # (N, 1, 32, 32)
        return (on.expand(-1, 3, -1, -1) * 0.9 + 0.05)


def _detector(images):
    return images.mean(1) > 0.5  # (N, H, W) "window pixels"


def test_dropping_the_true_window_maps_lowers_the_window_rate():
    G = _ToyG()
    z = torch.rand(60, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    layer = windows.g_layer(G, 0)
    images, acts = windows.layer_activations(G, layer, z, reference=0)
    boxes = [mask_boxes(m, 4) for m in _detector(images)]
    X, y, ids = windows.training_cells(acts, boxes, 32, seed=0)
    fit = windows.window_maps(X, y, ids, seed=0)
    assert 0 in fit["dropped"] and fit["accuracy"] > 0.9
    before = (_detector(G(z)).flatten(1).sum(1) > 0).float().mean()
    with windows.drop_maps(layer, fit["dropped"]):
        after = (_detector(G(z)).flatten(1).sum(1) > 0).float().mean()
    assert before > 0.3 and after == 0


def test_the_maps_dropped_come_from_all_cells_and_the_seed_moves_only_the_accuracy():
    G = _ToyG()
    z = torch.rand(60, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    images, acts = windows.layer_activations(G, windows.g_layer(G, 0), z, reference=0)
    X, y, ids = windows.training_cells(acts, [mask_boxes(m, 4) for m in _detector(images)], 32, seed=0)
    fits = [windows.window_maps(X, y, ids, seed=s) for s in range(4)]
    assert all(f["dropped"] == fits[0]["dropped"] and torch.equal(f["weights"], fits[0]["weights"])
               for f in fits)
    assert all(0.9 < f["accuracy"] <= 1 for f in fits)  # held out: a fit without a quarter


def test_g_layer_names_the_valid_range():
    with pytest.raises(ReproError, match="0..1"):
        windows.g_layer(_ToyG(), 2)


# ---------------------------------------------------------------- annotation file

def test_annotation_file_round_trip_and_bad_input(tmp_path):
    good = tmp_path / "boxes.json"
    good.write_text(json.dumps({"seed": 6, "n_samples": 5, "boxes": {"0": [[1, 2, 10, 12]], "3": []}}))
    boxes = windows.load_boxes(good, 5, 6, 64)
    assert boxes[0] == [(1, 2, 10, 12)] and boxes[1] == [] and len(boxes) == 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"seed": 6, "n_samples": 5,
                               "boxes": {"7": [[0, 0, 4, 4]], "1": [[10, 0, 5, 4]], "x": []}}))
    with pytest.raises(ReproError) as err:
        windows.load_boxes(bad, 5, 6, 64)
    text = str(err.value)
    assert "sample id '7'" in text and "sample 1: box [10, 0, 5, 4]" in text and "sample id 'x'" in text
    wrong_seed = tmp_path / "seed.json"
    wrong_seed.write_text(json.dumps({"seed": 1, "n_samples": 5, "boxes": {"0": [[1, 2, 10, 12]]}}))
    with pytest.raises(ReproError, match="seed 1"):
        windows.load_boxes(wrong_seed, 5, 6, 64)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ReproError, match="not valid JSON"):
        windows.load_boxes(tmp_path / "junk.json", 5, 6, 64)
    with pytest.raises(ReproError, match="not found"):
        windows.load_boxes(tmp_path / "none.json", 5, 6, 64)


# ---------------------------------------------------------------- Figs. 7/8 arithmetic

def _toy_render(z):
    """z (N, 2) -> (N, 1, 2, 2): pixel 0 bright iff z0 > 0, pixel 1 bright iff z1 > 0."""
    x = torch.zeros(len(z), 1, 2, 2)
    x[:, 0, 0, 0] = (z[:, 0] > 0).float()
    x[:, 0, 0, 1] = (z[:, 1] > 0).float()
    return x


def _toy_classify(x):
    return torch.stack([x[:, 0, 0, 0], x[:, 0, 0, 1]], 1)  # probabilities of "a", "b"


def test_vector_arithmetic_share_on_a_toy_latent_space():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(400, 2, generator=g) * 2 - 1
    images = _toy_render(z)
    probs = _toy_classify(images)
    names = ["a", "b"]
    equation = [{"a": 1, "b": 1}, {"a": 0, "b": 1}, {"a": 0, "b": 0}]
    res = arith.run_equation(z, images, probs, names, equation, _toy_render, _toy_classify,
                             per=3, repeats=2, n_noisy=8, noise=0.25, seed=0,
                             coherent=lambda x: x.flatten(1).amax(1) > 0.9)
    assert res["intended"] == {"a": 1, "b": 0}
    # exemplars of A have a > 0 and b > 0, etc.; the result lands where a > 0 and b < 0 unless
    # the noise pushes it over an axis: compute the expected share directly
    expected = []
    for k, r in enumerate(res["rows"]):
        a, b, c = (z[p].mean(0) for p in r["picks"])
        zs = arith.z_arithmetic(z, r["picks"], 8, 0.25, k)
        assert torch.allclose(zs[0], a - b + c)
        expected += ((zs[:, 0] > 0) & (zs[:, 1] <= 0)).tolist()
    assert res["z_share"] == pytest.approx(sum(expected) / len(expected))
    assert res["z_share"] > 0.5
    # pixel means: A - B + C of the 0/1 pixels = (1, 0): the pixel result has a but not b
    assert res["pixel_share"] == 1.0
    # the coherent shares count only results the (toy) coherence judge also accepts
    assert res["z_coherent"] <= res["z_share"] and res["pixel_coherent_count"] <= 2
    assert res["prior"] == pytest.approx(((z[:, 0] > 0) & (z[:, 1] <= 0)).float().mean().item())


def test_equation_with_no_meaningful_result_is_refused():
    with pytest.raises(ReproError, match="not 0 or 1"):
        arith.intended([{"a": 1}, {"a": 0}, {"a": 1}])


def test_turn_vector_points_from_start_to_end():
    z = torch.rand(100, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    probs = _toy_classify(_toy_render(z))
    d, begin = arith.turn_vector(z, probs, ["a", "b"], {"a": 0}, {"a": 1}, per=3)
    assert d[0] > 0 and (z[begin, 0] <= 0).all()


def test_judges_train_the_same_whatever_the_global_rng_did():
    """The drift gate needs this: a judge's weights depend only on its seed."""
    from repro.figures import nets

    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 64, 64, generator=g)
    y = (torch.rand(16, 1, 64, 64, generator=g) > 0.9).float()
    weights = []
    for burn in (1, 5):
        torch.rand(burn)  # other code drawing from the global RNG before the judge is built
        net = nets.fit(nets.Segmenter(1), x, y, 3, 8, 0, torch.device("cpu"), "t")
        weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert torch.equal(*weights)


def test_a_judge_of_several_seeds_reads_their_mean_logit():
    """figures.judges: one seed is exactly the plain net; several are read by their mean logit."""
    from repro.figures import nets

    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 64, 64, generator=g)
    y = (torch.rand(16, 2, generator=g) > 0.5).float()
    cpu = torch.device("cpu")
    single = nets.fit_judges(lambda: nets.AttributeNet(2), x, y, 3, 8, [7], cpu, "t")
    plain = nets.fit(nets.AttributeNet(2), x, y, 3, 8, 7, cpu, "t")
    assert torch.equal(nets.predict(single, x, cpu), nets.predict(plain, x, cpu))
    both = nets.fit_judges(lambda: nets.AttributeNet(2), x, y, 3, 8, [7, 1007], cpu, "t")
    assert isinstance(both, nets.MeanLogit) and len(both.members) == 2
    with torch.no_grad():
        logits = torch.stack([m(x) for m in both.members])
        assert not torch.equal(logits[0], logits[1])  # the seeds gave different nets
        assert torch.allclose(both(x), logits.mean(0))


def test_frozen_statistics_show_a_drop_that_batch_statistics_renormalise():
    """Fig. 6's render: on batch statistics the BN after a dropped layer rescales what is left
    back to unit spread (undoing the drop); on an undropped batch's statistics it does not.
    Every buffer and mode is restored afterwards."""
    from repro.figures.common import frozen_statistics
    from repro.train.sampling import batch_statistics

    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 4), nn.BatchNorm1d(4))
    z = torch.randn(512, 4)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    dropped = list(range(12))  # 12 of the 16 hidden units
    with torch.no_grad(), batch_statistics(G), windows.drop_maps(G[1], dropped):
        renormalised = G(z)
    with torch.no_grad(), frozen_statistics(G, z), windows.drop_maps(G[1], dropped):
        kept = G(z)
    assert renormalised.std(0).mean() == pytest.approx(1.0, abs=0.01)
    assert kept.std(0).mean() < 0.8
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items()) and G.training


def test_binomial_se_is_never_zero_and_every_count_has_its_own():
    """A share of 0 or 1 is not exact, and n and n - 1 of n give different se's (the drift
    gate measures the spread of a ± between seeds)."""
    from repro.utils.stats import binomial_se

    n = 96
    ses = [binomial_se(k / n, n) for k in range(n + 1)]
    assert min(ses) > 0 and len(set(ses[:n // 2 + 1])) == n // 2 + 1
    assert binomial_se(1.0, n) == pytest.approx(binomial_se(0.0, n))
    assert binomial_se(0.5, n) == pytest.approx((0.5 * 0.5 / n) ** 0.5)
