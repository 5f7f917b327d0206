"""Each figure's claim checked against the harness's numbers, and the data it was drawn from.

The paper's figures are qualitative; a check turns the claim into a test of one harness number
(or two, compared with each other) against a stated threshold:

- supports: the number is on the claim's side of the threshold, by more than its noise;
- contradicts: it is on the other side, by more than its noise (e.g. DCGAN vector arithmetic
  agreeing less often than the same arithmetic on pixels, Fig. 7);
- inconclusive: the margin (the number's signed distance from the threshold, positive on the
  claim's side) is within NOISE_K standard errors of zero: the draws the number already makes
  (samples, walks, equations, random inits, random maps, judge seeds, test digits) could move
  it to either side;
- not comparable: the judge the number relies on (window detector, attribute classifier) is too
  inaccurate for the number to mean anything, so no side is taken;
- not run: a number the check needs is missing.

The thresholds are the harness's decision rules, written here once, not measured numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from repro.published import load_figures
from repro.report.build import FigureEntry, Measured, figure_cell_ids
from repro.utils.stats import binomial_se

SUPPORTS = "supports"
CONTRADICTS = "contradicts"
INCONCLUSIVE = "inconclusive"
NOT_COMPARABLE = "not comparable"
NOT_RUN = "not run"

# a margin within this many standard errors of zero decides nothing (about 95% two-sided)
NOISE_K = 2.0
# a judge (a classifier whose verdicts a number counts) below this accuracy decides nothing
JUDGE_ACCURACY = 0.8
# samples at least this close to held-out images as to training images are not copies
# (memorisation.py: copying gives a ratio << 1, generalising a ratio near 1 or above)
MEMORISATION_RATIO = 0.8


# Has a figure's generator learned its data? Its samples must hold windows at least this
# share as often as held-out real rooms do (same window detector on both; figures stage's
# window_rate_vs_real). An unlearned generator's figures test nothing, so no side is taken
# below it: Figs. 3-8 read the final generator, Fig. 2 the one-epoch one (whose "epoch" on a
# small dataset may be a small fraction of the paper's 3M-image pass).
LEARNED_RATIO = 0.5
REALISM = {"fig2": "lsun_samples_1epoch/window_rate_vs_real"}
REALISM_DEFAULT = "lsun_samples_final/window_rate_vs_real"
ROOMS_FIGURES = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8")


@dataclass(frozen=True)
class ClaimCheck:
    number: str  # what the harness measured, in words with the values
    threshold: str  # what would support the claim
    verdict: str
    margin: float | None = None  # signed distance from the threshold, > 0 on the claim's side
    noise: float | None = None  # the margin's standard error over the draws; None: not measured

    @property
    def margin_text(self) -> str:
        """'margin +0.12 ± 0.03' (± one standard error), or '-' when no margin applies."""
        if self.margin is None:
            return "-"
        noise = f" ± {_f(self.noise)}" if self.noise is not None else " (± not measured)"
        return f"margin {self.margin:+.3g}{noise}"


def decide(margin: float, noise: float | None) -> str:
    """The verdict of a margin (> 0: the claim's side) with standard error `noise`."""
    if noise is not None and abs(margin) <= NOISE_K * noise:
        return INCONCLUSIVE
    return SUPPORTS if margin > 0 else CONTRADICTS


def _decided(number: str, threshold: str, margin: float, noise: float | None) -> ClaimCheck:
    return ClaimCheck(number, threshold, decide(margin, noise), margin, noise)


def _v(values: dict[str, float], key: str) -> float | None:
    return values.get(key)


def _f(x: float) -> str:
    return f"{x:.3g}"


def _judged(values: dict[str, float], judge: str, name: str) -> str | None:
    """Why no side is taken when the judge `judge` is missing or too weak; else None."""
    acc = values.get(judge)
    if acc is None:
        return f"{name} accuracy not measured"
    if acc < JUDGE_ACCURACY:
        return f"{name} accuracy {_f(acc)} < {JUDGE_ACCURACY}"
    return None


def _judged_check(v: dict[str, float], number: str, threshold: str, margin: float,
                  noise: float | None, judges: tuple[tuple[str, str], ...]) -> ClaimCheck:
    """A check whose number counts judges' verdicts ((cell, name) each): no side taken when
    one of them is weak."""
    for judge, name in judges:
        weak = _judged(v, judge, name)
        if weak:
            return ClaimCheck(f"{number}; {weak}", threshold, NOT_COMPARABLE, margin, noise)
    return _decided(number, threshold, margin, noise)


def _memorisation(suffix: str) -> Callable[[dict[str, float]], ClaimCheck | None]:
    def check(v: dict[str, float]) -> ClaimCheck | None:
        ratio = _v(v, suffix)
        if ratio is None:
            return None
        return _decided(f"nearest-training / nearest-held-out distance ratio {_f(ratio)}",
                        f"ratio >= {MEMORISATION_RATIO} (copies give << 1)",
                        ratio - MEMORISATION_RATIO, _v(v, f"{suffix}_se"))
    return check


# Fig. 4: at most this share of the walks may hold a sharp jump (a step above
# figures.walk.jump_ratio x the walk's median step): a memorising generator jumps in most walks
# that cross between its memorised images, a smooth one in none; a share, not "no jump at all",
# so that one extreme step among hundreds of walks does not decide.
WALK_JUMP_SHARE = 0.05


def _walk(v: dict[str, float]) -> ClaimCheck | None:
    jumped, walks = _v(v, "latent_walk/walks_with_jump"), _v(v, "latent_walk/walks")
    if jumped is None or not walks:
        return None
    share, ratio = jumped / walks, _v(v, "latent_walk/mean_walk_max_step_ratio_pixel")
    jumps = _v(v, "latent_walk/n_jumps")
    extra = f", {int(jumps)} jumps" if jumps is not None else ""
    extra += f"; largest / median step per walk, mean {_f(ratio)}" if ratio is not None else ""
    return _decided(f"{int(jumped)} of {int(walks)} walks with a sharp jump{extra}",
                    f"share <= {WALK_JUMP_SHARE} (a jump: a step above figures.walk.jump_ratio x "
                    "the walk's median)", WALK_JUMP_SHARE - share, binomial_se(share, int(walks)))


def _guided(v: dict[str, float]) -> ClaimCheck | None:
    key = "guided_backprop/trained_over_random_concentration"
    ratio = _v(v, key)
    if ratio is None:
        return None
    trained, random = (_v(v, f"guided_backprop/object_mass_{k}") for k in ("trained", "random"))
    masses = (f" (object mass {_f(trained)} trained, {_f(random)} random)"
              if trained is not None and random is not None else "")
    return _decided(f"trained / random D saliency concentration on objects {_f(ratio)}{masses}",
                    "ratio > 1 (trained D looks at objects more than a random D)", ratio - 1,
                    _v(v, f"{key}_se"))


# Fig. 6: "mostly forgets": after dropping the window maps, at most this share of the windows
# that dropping as many random maps leaves (the random drop is the baseline: dropping any maps
# changes what G draws).
WINDOW_SHARE = 0.5


def _windows(v: dict[str, float]) -> ClaimCheck | None:
    before, after = _v(v, "window_removal/window_rate_before"), _v(v, "window_removal/window_rate_after")
    ratio, random = _v(v, "window_removal/after_over_random"), _v(v, "window_removal/window_rate_after_random")
    if before is None or after is None or ratio is None:
        return None
    rand = f", {_f(random)} after dropping as many random maps" if random is not None else ""
    return _judged_check(v, f"window rate {_f(before)} before, {_f(after)} after dropping the "
                         f"window maps{rand}: ratio to random {_f(ratio)}",
                         f"after / after random maps <= {WINDOW_SHARE} (\"mostly forgets\")",
                         WINDOW_SHARE - ratio, _v(v, "window_removal/after_over_random_se"),
                         (("window_detector/accuracy", "window detector"),))


ARITH_JUDGES = (("attribute_classifier/accuracy", "attribute classifier"),
                ("coherence_judge/accuracy", "coherence judge"))


def _accuracies(values: dict[str, float]) -> dict[str, float]:
    """The coherence judge's accuracy from its error share (the figures stage records the
    share of its tested images it gets wrong), as the other judges' accuracies are stored."""
    wrong = values.get("fig7/coherence_judge/errors")
    return {"fig7/coherence_judge/accuracy": 1 - wrong} if wrong is not None else {}


def _arithmetic(v: dict[str, float]) -> ClaimCheck | None:
    base = "vector_arithmetic/"
    z, count, n = (_v(v, base + k) for k in ("coherent_agreement", "pixel_coherent_results", "equations"))
    if z is None or count is None or not n:
        return None
    pixel, z_se = count / n, _v(v, base + "coherent_agreement_se")
    # the z share's noise over its equations and the coherence judge's seeds (figures stage);
    # the pixel share's is binomial (one result each)
    noise = (z_se ** 2 + binomial_se(pixel, int(n)) ** 2) ** 0.5 if z_se is not None else None
    za, pa = _v(v, base + "attribute_agreement"), _v(v, base + "pixel_attribute_agreement")
    attrs = (f" (attributes alone: {_f(za)} z, {_f(pa)} pixels)" if za is not None and pa is not None
             else "")
    return _judged_check(v, f"share with the intended attributes in one coherent image {_f(z)} for "
                         f"z arithmetic, {_f(pixel)} for the same in pixels{attrs}",
                         "z arithmetic > pixel arithmetic", z - pixel, noise, ARITH_JUDGES)


def _turn(v: dict[str, float]) -> ClaimCheck | None:
    rate, walks = _v(v, "turn_vector/turned_rate"), _v(v, "turn_vector/walks")
    if rate is None:
        return None
    # over the walks and the coherence judge's seeds where the stage measured it, else binomial
    se = _v(v, "turn_vector/turned_rate_se")
    noise = se if se is not None else binomial_se(rate, int(walks)) if walks else None
    # the turn is judged by Fig. 7's attribute classifier and coherence judge
    return _judged_check(v, f"share of walks that end turned, in one coherent image {_f(rate)}",
                         "share >= 0.5", rate - 0.5, noise, ARITH_JUDGES)


# Fig. 9: a 1-NN classifier trained on the samples (Table 3's protocol) must classify real test
# digits far better than chance (90% error) for the samples to "look like real digits".
DIGITS_ERROR = 50.0
# The draws Fig. 9's error makes are the test digits the 1-NN classifies: their count is in
# the Table 3 cell's protocol (not a cell of its own), read in as '<cell id>/n_test'.
DIGITS_CELL = "table3/dcgan/err@50k"
TEST_COUNT = "n_test"


def _digits(v: dict[str, float]) -> ClaimCheck | None:
    err, real = _v(v, "dcgan/err@50k"), _v(v, "real/err@50k")
    if err is None:
        return None
    n = _v(v, f"dcgan/err@50k/{TEST_COUNT}")
    # binomial over the test digits, in percentage points
    noise = 100 * binomial_se(err / 100, int(n)) if n else None
    vs = f" (real digits: {_f(real)}%)" if real is not None else ""
    over = f" on {int(n):,} test digits" if n else ""
    return _decided(f"1-NN trained on the samples: {_f(err)}% test error{over}{vs}",
                    f"error < {DIGITS_ERROR:g}% (chance: 90%)", DIGITS_ERROR - err, noise)


def test_counts(measured: dict[str, Measured]) -> dict[str, float]:
    """'<cell id>/n_test' -> the test-set count a cell's protocol states, for the cells whose
    noise is binomial over it (Fig. 9's)."""
    out = {}
    for m in measured.values():
        n = m.cell.protocol.get(TEST_COUNT) if m.id == DIGITS_CELL else None
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            out[f"{m.id}/{TEST_COUNT}"] = n
    return out


# figure id -> its check; the values it reads are keyed by cell id without the "figN/" prefix
CHECKS: dict[str, Callable[[dict[str, float]], ClaimCheck | None]] = {
    "fig2": _memorisation("lsun_samples_1epoch/nn_train_over_heldout_l2"),
    "fig3": _memorisation("lsun_samples_final/nn_train_over_heldout_l2"),
    "fig4": _walk,
    "fig5": _guided,
    "fig6": _windows,
    "fig7": _arithmetic,
    "fig8": _turn,
    "fig9": _digits,
    "fig11": _memorisation("imagenet_samples/nn_train_over_heldout_l2"),
}


# Cells read by other figures' checks too: the judges' accuracies, the generators' realism and
# Table 3's digits (Fig. 8's turn is judged by the attribute classifier Fig. 7's cells describe).
SHARED_SUFFIXES = ("/attribute_classifier/accuracy", "/window_detector/accuracy",
                   "/coherence_judge/accuracy", "/coherence_judge/tested", "/window_rate_vs_real",
                   "table3/dcgan/err@50k",
                   f"table3/dcgan/err@50k/{TEST_COUNT}", "table3/real/err@50k")


def claim_check(fig: str, own: dict[str, float | None], every: dict[str, float | None]) -> ClaimCheck:
    """The claim check of figure `fig` from its own cells' values and every measured cell's
    (both keyed by cell id, e.g. 'fig4/latent_walk/n_jumps'; see the module docstring)."""
    rule = CHECKS.get(fig)
    if rule is None:
        return ClaimCheck("-", "no number can test this claim", NOT_COMPARABLE)
    every = {**every, **_accuracies(every)}
    judges = {cid.split("/", 1)[1]: v for cid, v in every.items()
              if cid.endswith(SHARED_SUFFIXES) and v is not None}
    values = {**judges, **{cid.split("/", 1)[1]: v for cid, v in own.items() if v is not None}}
    found = rule(values)
    if found is None:
        return ClaimCheck("not measured", "-", NOT_RUN)
    return _gate(fig, found, judges)


def check_figure(entry: FigureEntry, measured: dict[str, Measured]) -> ClaimCheck:
    """The claim check of one report entry."""
    own = {cid: m.cell.value for cid, m in entry.numbers if m is not None}
    every = {m.id: m.cell.value for m in measured.values()}
    return claim_check(entry.spec.id, own, {**every, **test_counts(measured)})


def figure_verdicts(values: dict[str, Any]) -> dict[str, str]:
    """Flat metrics values ('<metrics file stem>/<cell id>' -> value, as the drift gate reads
    them) -> each figure's verdict, its cells chosen as the report chooses them.

    Flat values hold no protocol, so Fig. 9's test count (`test_counts`) is absent here: its
    verdict is decided on the margin alone, which gives the report's verdict unless that
    margin is within NOISE_K binomial standard errors of the test digits."""
    by_id: dict[str, Any] = {}
    for key in sorted(values):
        by_id.setdefault(key.split("/", 1)[1], values[key])
    out = {}
    for spec in load_figures():
        own = {cid: by_id.get(cid) for cid in figure_cell_ids(spec, by_id)}
        out[spec.id] = claim_check(spec.id, own, by_id).verdict
    return out


def _gate(fig: str, found: ClaimCheck, judges: dict[str, float]) -> ClaimCheck:
    """`found`, unless the figure's generator has not learned its data (LEARNED_RATIO)."""
    ratio = judges.get(REALISM.get(fig, REALISM_DEFAULT)) if fig in ROOMS_FIGURES else None
    if ratio is None or found.verdict in (NOT_COMPARABLE, NOT_RUN):
        return found
    learned = f"generator's window rate {_f(ratio)} x real rooms'"
    threshold = f"{found.threshold}; generator learned: window rate >= {LEARNED_RATIO} x real"
    weak = _judged(judges, "window_detector/accuracy", "window detector")
    m = dict(margin=found.margin, noise=found.noise)
    if weak:
        return ClaimCheck(f"{found.number}; {learned}, {weak}", threshold, NOT_COMPARABLE, **m)
    if ratio >= LEARNED_RATIO:
        return ClaimCheck(f"{found.number}; {learned}", threshold, found.verdict, **m)
    return ClaimCheck(f"{found.number}; {learned}: not learned", threshold, NOT_COMPARABLE, **m)


def _source_name(source: str, dataset: str | None) -> str:
    """'generated: synth_rooms train (seed 0)' -> 'generated rooms'; 'real MNIST test (...)' ->
    'real MNIST'."""
    if source.startswith("generated"):
        name = (dataset or source.split(":", 1)[-1].split()[0]).removeprefix("synth_")
        return f"generated {name.replace('_', ' ')}"
    return source.split("(", 1)[0].replace(" train", "").replace(" test", "").strip()


def data_label(entry: FigureEntry) -> str | None:
    """The data the figure's numbers were measured on, from their cells' protocol (training
    source first); None when no cell records it."""
    for _, m in entry.numbers:
        if m is None:
            continue
        protocol = m.cell.protocol
        for key in ("train_source", "data_source", "test_source"):
            if isinstance(protocol.get(key), str):
                return _source_name(protocol[key], protocol.get("dataset"))
        if isinstance(protocol.get("dataset"), str):
            return protocol["dataset"]
    return None


def heading(entry: FigureEntry) -> str:
    """'Figure 2 on generated rooms (paper: LSUN bedrooms after one training pass)'."""
    data = data_label(entry)
    where = f" on {data}" if data else ""
    return f"Figure {entry.spec.number}{where} (paper: {entry.spec.title})"
