"""The stage's Figs. 6-8 (editing the generator: dropping window maps, z arithmetic, turning).

Functions take the stage's `Figures` object (repro.stages.figures) for its data, judges,
renderer and records; they are split from it only to keep modules short.
"""

from __future__ import annotations

import math

import torch

from repro.figures import arithmetic as arith
from repro.figures import coherence, judges, nets, walk, windows
from repro.figures.common import (
    REFERENCE_SEED, draw_boxes, frozen_statistics, mask_boxes, render_frozen, sample_z, to01, to_u8,
)
from repro.figures.windows import box_masks
from repro.utils.stats import binomial_se


def windows_fig(F, variant, G, seed: int, draw: bool) -> None:
    w, dev = F.cfg.windows, F.dev
    size = variant.spec.image_size
    layer = windows.g_layer(G, w.layer)
    # The samples boxes are drawn on: fixed by render_seed so an annotation file names them.
    z = sample_z(variant, w.n_samples, w.render_seed, dev)
    images, acts = windows.layer_activations(lambda zz: F.render01(variant, G, zz), layer, z, F.cfg.reference_z)
    detector = F.detector
    if F.boxes_given is not None:
        boxes = F.boxes_given
        # No real window masks exist for LSUN: the detector that measures the rate learns the
        # hand-drawn boxes (as masks) of these same samples.
        detector = nets.fit(nets.Segmenter(1), images, box_masks(boxes, size)[:, None],
                            w.detector_steps, 32, 0, dev, "window detector (boxes)",
                            lr=nets.SEGMENTER_LR, balance=True)
        source = f"hand-drawn boxes ({w.annotations})"
    else:
        prob = nets.predict(detector, images, dev)[:, 0]  # (N, H, W)
        boxes = [mask_boxes(p > 0.5, nets.MIN_WINDOW_PIXELS) for p in prob]
        source = "window detector trained on exact masks of real generated rooms"
        if not any(boxes):
            # A barely trained G (smoke profile) draws nothing the detector calls a window; the
            # most window-like region of the most window-like samples keeps the path measured.
            top = prob.flatten(1).amax(1).argsort(descending=True)[:max(1, len(prob) // 4)]
            for i in top.tolist():
                boxes[i] = mask_boxes(prob[i] >= prob[i].quantile(0.98), 1)[:1]
            source = "no sample had a detected window: boxes on the detector's strongest responses"
            F.extra_deviations.append("Fig. 6: " + source)
    # The boxes' samples are fixed by render_seed (an annotation file names them), and so are
    # their random negative cells: the maps dropped are one fixed outcome of the figure's
    # setup, measured on test samples the seed draws. (Drawn by the seed, the negatives alone
    # moved the rooms model's window rate after the drop across most of [0, 1].)
    X, y, ids = windows.training_cells(acts, boxes, size, w.render_seed)
    fit = windows.window_maps(X, y, ids, seed, w.logreg_c)
    zt = sample_z(variant, w.test_samples, seed + 8, dev)

    def detect(x01):
        return nets.has_window(nets.predict(detector, x01, dev)[:, 0])

    def frozen01(zz):
        return to01(render_frozen(G, zz, F.cfg.batch_size), variant.spec.pixel_range).cpu()

    z_ref = sample_z(variant, F.cfg.reference_z, REFERENCE_SEED, dev)
    with frozen_statistics(G, z_ref):
        # The random maps, like the window maps, are a fixed outcome of the figure's setup
        # (render_seed); their spread enters the number's noise, not the seed sweep's.
        res = windows.removal(frozen01, layer, fit["dropped"], acts.shape[1], zt, detect,
                              w.random_draws, w.render_seed)
    before, after = res["before_images"], res["after_images"]
    # The drop as the batch-statistics render shows it (how samples are drawn elsewhere): kept
    # as a cell so the report shows what the next BN layer's re-normalisation does to it.
    with windows.drop_maps(layer, fit["dropped"]):
        batch_after = detect(F.render01(variant, G, zt)).float().mean().item()
    rate = {"before": res["before"], "after": res["after"]}
    facts = dict(boxes_from=source, n_boxes=sum(map(len, boxes)), n_box_samples=sum(1 for b in boxes if b),
                 n_samples=w.n_samples, test_samples=w.test_samples, layer=w.layer,
                 random_draws=w.random_draws, render_bn="frozen statistics of an undropped batch",
                 layer_shape=list(acts.shape[1:]), min_window_pixels=nets.MIN_WINDOW_PIXELS)
    F.record("fig6/window_removal/window_rate_before", rate["before"], seed, "share", **facts)
    F.record("fig6/window_removal/window_rate_after", rate["after"], seed, "share", **facts)
    F.record("fig6/window_removal/window_rate_after_random", sum(res["random"]) / len(res["random"]),
             seed, "share", random_rates=res["random"], **facts)
    F.record("fig6/window_removal/after_over_random", res["after_over_random"], seed, "ratio", **facts)
    F.record("fig6/window_removal/after_over_random_se", res["after_over_random_se"], seed, "ratio",
             **facts)
    F.record("fig6/window_removal/window_rate_after_batch_bn", batch_after, seed, "share", **facts)
    F.record("fig6/window_removal/n_dropped_maps", len(fit["dropped"]), seed, "maps", **facts)
    F.record("fig6/window_removal/logreg_acc", fit["accuracy"], seed, "share", **facts)
    if F.boxes_given is None:
        F.record("fig6/window_detector/accuracy", F.detector_acc, seed, "share",
                 measured_on="held-out real generated rooms with exact masks")
    if draw:
        k = min(32, len(images))
        F.grid(draw_boxes(to_u8(images[:k]), boxes[:k]), "fig6_boxes.png",
               f"Fig. 6 input: window boxes on samples ({source}); {facts['n_boxes']} boxes on "
               f"{facts['n_box_samples']} of {w.n_samples} samples", nrow=8)
        s = min(w.show, len(before))
        F.grid(torch.cat([to_u8(before[:s]), to_u8(after[:s])]), "fig6_window_removal.png",
               f"Fig. 6: top row unmodified samples, bottom row the same z with the "
               f"{len(fit['dropped'])} window maps (weight > 0) of G block {w.layer} zeroed (BN on an "
               f"undropped batch's statistics); share with a window {rate['before']:.2f} -> "
               f"{rate['after']:.2f} (as many random maps: {sum(res['random']) / len(res['random']):.2f})",
               nrow=s)


def coherence_judge(F, variant, G, seed: int):
    """The coherence judge of this generator (repro.figures.coherence): trained on
    `coherence_samples` of G's samples (z drawn by seed + 12), measured on `max_test` fresh
    ones (seed + 13). -> (ensemble, its members, (wrong, tested))."""
    a = F.cfg.arithmetic
    fit = F.render01(variant, G, sample_z(variant, a.coherence_samples, seed + 12, F.dev))
    test = F.render01(variant, G, sample_z(variant, a.max_test or a.coherence_samples // 8,
                                           seed + 13, F.dev))
    net = coherence.train(fit, a.exemplars, a.classifier_steps, judges.seeds(F.cfg), F.dev)
    wrong_tested = coherence.errors(net, test, a.exemplars, seed + 1, F.dev)
    return (coherence.judge(net, F.dev), [coherence.judge(m, F.dev) for m in coherence.members(net)],
            wrong_tested)


def arithmetic_fig(F, variant, G, seed: int, draw: bool) -> None:
    a, dev = F.cfg.arithmetic, F.dev
    names = list(a.attributes)
    coherent, member_judges, (wrong, tested) = coherence_judge(F, variant, G, seed)
    z = sample_z(variant, a.pool, seed + 10, dev)
    x = F.render01(variant, G, z)
    probs = F.classify(x)

    def render01(zz):
        return F.render01(variant, G, zz)

    res = arith.run_equation(z, x, probs, names, a.equation, render01, F.classify, a.exemplars,
                             a.repeats, a.noisy, a.noise, seed, coherent)
    # The judge seeds' share of the margin's noise: the margin as each member judge alone
    # gives it (coherence.member_spread), added to the spread over the equations.
    margins = [arith.judged_margin(res["rows"], m) for m in member_judges]
    judge_se = coherence.member_spread(margins)
    facts = dict(equation=a.equation, intended=res["intended"], exemplars=a.exemplars,
                 repeats=a.repeats, noisy=a.noisy, noise=a.noise, pool=a.pool,
                 exemplar_selection="automatic: the pool samples the attribute classifier scores "
                                    "most likely to have the concept",
                 classifier_data=F.attr_source)
    F.record("fig7/vector_arithmetic/attribute_agreement", res["z_share"], seed, "share", **facts)
    F.record("fig7/vector_arithmetic/pixel_attribute_agreement", res["pixel_share"], seed, "share", **facts)
    F.record("fig7/vector_arithmetic/coherent_agreement", res["z_coherent"], seed, "share", **facts)
    F.record("fig7/vector_arithmetic/coherent_agreement_se", math.hypot(res["z_coherent_se"], judge_se),
             seed, "share", how="over the equations and the coherence judge's seeds (the latter "
             "from the margin z - pixel share as each member judge alone gives it)",
             equations_se=res["z_coherent_se"], judge_seeds_se=judge_se, member_margins=margins,
             **facts)
    # counts (unit equations): each equation has one pixel result; the claim check derives
    # the share and its binomial noise (a share of 0 on every seed would gate nothing)
    F.record("fig7/vector_arithmetic/pixel_coherent_results", res["pixel_coherent_count"], seed,
             "equations", **facts)
    F.record("fig7/vector_arithmetic/equations", a.repeats, seed, "equations", **facts)
    F.record("fig7/vector_arithmetic/prior_rate", res["prior"], seed, "share", **facts)
    # the yardstick: how many of the pool's plain samples the coherence judge calls one image
    F.record("fig7/vector_arithmetic/coherent_samples", int(coherent(x).sum()), seed, "images",
             pool=a.pool)
    judged = dict(measured_on="fresh samples of the generator and as many pixel-arithmetic "
                              "overlays of them", judges=len(member_judges))
    # the share of the tested images it gets wrong, not their count: a good judge's few
    # errors move between seeds by more than the one-count floor a count is gated with
    F.record("fig7/coherence_judge/errors", wrong / tested, seed, "share", wrong=wrong, **judged)
    F.record("fig7/coherence_judge/tested", tested, seed, "images", **judged)
    F.record("fig7/attribute_classifier/accuracy", sum(F.attr_acc) / len(F.attr_acc), seed, "share",
             per_attribute=dict(zip(names, F.attr_acc)), measured_on="held-out real labelled images")
    if draw:
        rows = []
        for r in res["rows"][:a.show]:
            rows += [x[i] for p in r["picks"] for i in p] + [r["pixel_image"][0]] + list(r["z_images"])
        eq = " - ".join(str(c) for c in a.equation[:2]) + f" + {a.equation[2]}"
        F.grid(to_u8(torch.stack(rows)), "fig7_vector_arithmetic.png",
               f"Fig. 7: {eq} (one row per equation; {min(a.show, a.repeats)} of the {a.repeats} "
               f"measured): {a.exemplars} automatically chosen exemplars "
               f"per concept, the pixel-space result, then the z result and {a.noisy} samples with "
               f"+-{a.noise} noise; share with {res['intended']} (and judged one coherent image): z {res['z_share']:.2f} "
               f"({res['z_coherent']:.2f}), pixels {res['pixel_share']:.2f} ({res['pixel_coherent']:.2f})",
               nrow=3 * a.exemplars + 2 + a.noisy)

    turn = arith.run_turn(z, probs, names, a.turn_from, a.turn_to, a.turn_rows, a.turn_frames,
                          render01, F.classify, coherent)
    grid = turn["frames"]  # (R, T, C, H, W)
    R, T = grid.shape[:2]
    sm = walk.smoothness(walk.step_sizes(grid.reshape(R, T, -1)), F.cfg.walk.jump_ratio)
    turned_rate = turn["turned_rate"]
    tfacts = dict(turn_from=a.turn_from, turn_to=a.turn_to, rows=R, frames=T, exemplars=a.turn_rows)
    F.record("fig8/turn_vector/mean_walk_max_step_ratio_pixel", sm["mean_row_ratio"], seed, "ratio",
             **tfacts)
    F.record("fig8/turn_vector/turned_rate", turned_rate, seed, "share", **tfacts)
    rates = [(turn["turned"] & m(turn["last"])).float().mean().item() for m in member_judges]
    judge_se = coherence.member_spread(rates)
    F.record("fig8/turn_vector/turned_rate_se", math.hypot(binomial_se(turned_rate, R), judge_se),
             seed, "share", how="binomial over the walks and over the coherence judge's seeds "
             "(the rate as each member judge alone gives it)", judge_seeds_se=judge_se,
             member_rates=rates, **tfacts)
    F.record("fig8/turn_vector/walks", turn["walks"], seed, "walks", **tfacts)
    if draw:
        shown = grid[:a.show].flatten(0, 1)
        F.grid(to_u8(shown), "fig8_turn.png",
               f"Fig. 8: 'turn' vector mean z{a.turn_to} - mean z{a.turn_from}, added in {T} steps to "
               f"{R} exemplars of {a.turn_from} ({min(a.show, R)} shown); rows ending with {a.turn_to} "
               f"in one coherent image: "
               f"{turned_rate:.2f}", nrow=T)
