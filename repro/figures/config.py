"""The typed `figures` section of a profile (read by `repro.stages.figures`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from repro.config import Section
from repro.data.fit import Fit
from repro.errors import ReproError


class _Part(BaseModel):
    # strict like repro.config.Section: no quoted numbers, no bools for numbers
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MemorisationConfig(_Part):
    n_samples: PositiveInt = 1000  # samples whose nearest training image is searched
    grid: PositiveInt = 64  # samples shown in fig2/fig3 grids
    pairs: PositiveInt = 16  # sample / nearest-training-image pairs shown


class WalkConfig(_Part):
    rows: PositiveInt = 10
    anchors: int = Field(9, ge=2)
    steps: PositiveInt = 4  # frames per segment between anchors
    jump_ratio: PositiveFloat = 4.0  # a step > jump_ratio x the row's median step is a jump
    show: PositiveInt = 10  # walks drawn (all `rows` are measured)


class GuidedConfig(_Part):
    features: PositiveInt = 6  # the first features of D's last conv layer
    images: PositiveInt = 512  # real images searched for maximal responses
    top: PositiveInt = 4  # images per feature (shown and measured)
    random_inits: PositiveInt = 3  # randomly initialised Ds the trained one is compared with


class WindowsConfig(_Part):
    # None: boxes come from a window detector trained on the dataset's exact window masks
    # (generated rooms). A path: the hand-drawn annotation file (`python -m repro.figures.annotate`).
    annotations: str | None = None
    n_samples: PositiveInt = 150  # rendered samples to find boxes on (the paper: 150)
    render_seed: int = 6  # seed of those samples; the annotation file must match it
    layer: int = 1  # index into G.blocks of the layer read (the paper's "second highest")
    logreg_c: PositiveFloat = 1.0
    test_samples: PositiveInt = 256  # samples rendered with and without the drop
    random_draws: int = Field(5, ge=2)  # draws of as many random maps dropped (the baseline)
    show: PositiveInt = 16  # pairs shown in fig6
    detector_images: PositiveInt = 2000  # real images with masks to train the detector
    detector_steps: PositiveInt = 400
    detector_test: PositiveInt = 500  # held-out real images to measure the detector


class ArithmeticConfig(_Part):
    model: str | None = None  # train.<model> section; None: the figures' model
    variant: str | None = None  # the variant its checkpoints must hold; None: figures.variant
    dataset: str = "synth_rooms"  # real labelled images for the attribute classifier
    split: str = "train"
    test_split: str = "test"
    max_images: PositiveInt | None = 4000
    max_test: PositiveInt | None = 500
    attributes: list[str] = Field(default_factory=lambda: ["window", "bed_left"], min_length=1)
    # A - B + C, each a concept {attribute: 0 or 1}
    equation: list[dict[str, int]] = Field(default_factory=lambda: [
        {"window": 1, "bed_left": 1}, {"window": 0, "bed_left": 1}, {"window": 0, "bed_left": 0}])
    turn_from: dict[str, int] = Field(default_factory=lambda: {"bed_left": 1})
    turn_to: dict[str, int] = Field(default_factory=lambda: {"bed_left": 0})
    pool: PositiveInt = 2000  # generated samples the exemplars are chosen from
    exemplars: PositiveInt = 3  # per concept (the paper: 3)
    repeats: PositiveInt = 3  # equations with disjoint exemplars
    noisy: PositiveInt = 8  # noisy copies around the result (the paper: 8)
    noise: PositiveFloat = 0.25  # uniform noise scale (the paper: +-0.25)
    turn_rows: PositiveInt = 4
    turn_frames: int = Field(8, ge=2)
    show: PositiveInt = 3  # equations and turn walks drawn (all of them are measured)
    classifier_steps: PositiveInt = 400  # also the coherence judge's (repro.figures.coherence)
    # generated samples the coherence judge is trained on (and as many overlays of them); it is
    # measured on max_test fresh ones
    coherence_samples: PositiveInt = 4000
    # How the classifier's images are fitted to its 64x64 RGB input: "resize" (bilinear) or
    # "pad" (zero padding); a fit that changes them is a deviation of the Fig. 7/8 cells.
    fit: Fit = "resize"

    @model_validator(mode="after")
    def _check(self) -> "ArithmeticConfig":
        if len(self.equation) != 3:
            raise ReproError("figures.arithmetic.equation must list 3 concepts (A - B + C)")
        for concept in [*self.equation, self.turn_from, self.turn_to]:
            bad = [k for k, v in concept.items() if k not in self.attributes or v not in (0, 1)]
            if bad:
                raise ReproError(f"figures.arithmetic: concept {concept} uses {bad}; attributes "
                                 f"must be in {self.attributes} with values 0 or 1")
        return self


class FiguresConfig(Section):
    # Offsets every seed of the judges (window detector, attribute classifier), of the real
    # images they are fitted on and of the z samples each figure draws, so the drift gate's
    # seed sweep varies them too (a shipped generator's own seed is fixed).
    judge_seed: int = 0
    # Nets per judge (window detector, attribute classifier), trained under seeds judge_seed,
    # judge_seed + 1000, ... and read by their mean logit (repro.figures.nets.MeanLogit).
    judges: PositiveInt = 3
    # A folder under paths.shipped holding judges trained once with this section's judge
    # settings (repro.figures.judges): installed, md5-verified, not trained in the run. The
    # judge seed then still draws the held-out images that measure them and the z samples.
    shipped_judges: str | None = None
    model: str = "lsun64"  # train.<model> section whose checkpoints are drawn
    variant: str = "lsun64"  # the variant those checkpoints must hold
    dataset: str = "lsun_bedroom"  # the model's training data (memorisation, guided backprop)
    split: str = "train"
    max_train: PositiveInt | None = 100_000  # training images searched for nearest neighbours
    heldout_dataset: str | None = None  # None: `dataset`
    heldout_split: str = "test"
    max_heldout: PositiveInt | None = 1000
    batch_size: PositiveInt = 256
    # random z appended to every render batch (see repro.figures.common.REFERENCE_Z); fewer is
    # faster and noisier; `python -m repro.figures.annotate --reference` must use the same value
    reference_z: PositiveInt = 256
    memorisation: MemorisationConfig = Field(default_factory=MemorisationConfig)
    walk: WalkConfig = Field(default_factory=WalkConfig)
    guided: GuidedConfig = Field(default_factory=GuidedConfig)
    windows: WindowsConfig = Field(default_factory=WindowsConfig)
    arithmetic: ArithmeticConfig = Field(default_factory=ArithmeticConfig)
