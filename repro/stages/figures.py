"""Stage: the paper's Figs. 2-8 from the trained 64x64 model, each with a measured number.

Reads `<checkpoints>/<model>/seed<k>.pt` (every seed) and `epoch1_seed<k>.pt` (first seed,
Fig. 2), draws every figure for the first seed, measures every number for every seed, and
reads generated images through two small judges trained on real labelled images (or
shipped): a window segmenter (Figs. 2, 3, 6) and an attribute classifier (Figs. 7/8), and
through a coherence judge trained per generator on its own samples against overlays of them
(Figs. 7/8, repro.figures.coherence). See `repro.figures` for what each number means.

    python -m repro.stages.figures --checkpoints results/checkpoints \
        --metrics results/metrics/figures.json --figures results/figures \
        --provenance results/provenance --shipped results/shipped

`figures.shipped_judges` installs the judges from `<shipped>/<folder>` (repro.figures.judges).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from repro.data.base import ImageSet, to_float
from repro.data.loading import dataset_spec, load_dataset
from repro.errors import ReproError, cli_errors
from repro.figures import guided, judges, memorisation, nets, walk, windows
from repro.figures.common import cell, frame, render, sample_z, to01, to_u8, u8_to01
from repro.figures.config import FiguresConfig
from repro.models.checkpoint import build_from_checkpoint
from repro.published.protocol import FIGURES, diff_lines
from repro.context import Stage
from repro.stages.common import stage_main
from repro.train.sampling import save_grid
from repro.train.shipped import shipped_note

DRY = {"max_train": 256, "max_heldout": 64, "n_samples": 64, "images": 64, "steps": 5,
       "pool": 64, "test": 32}


def _shrink(cfg: FiguresConfig) -> FiguresConfig:
    """Dry run: the same code path at a few samples and steps."""
    m = cfg.memorisation.model_copy(update={"n_samples": DRY["n_samples"], "grid": 16, "pairs": 8})
    w = cfg.walk.model_copy(update={"rows": 2, "steps": 2})
    g = cfg.guided.model_copy(update={"images": DRY["images"], "top": 2})
    win = cfg.windows.model_copy(update={"n_samples": DRY["n_samples"], "test_samples": DRY["test"],
                                         "detector_images": DRY["max_train"], "detector_test": DRY["test"],
                                         "detector_steps": DRY["steps"], "show": 8})
    a = cfg.arithmetic.model_copy(update={"max_images": DRY["max_train"], "max_test": DRY["test"],
                                          "pool": DRY["pool"], "repeats": 1, "classifier_steps": DRY["steps"],
                                          "coherence_samples": DRY["max_train"],
                                          "turn_rows": 2})
    return cfg.model_copy(update={"max_train": DRY["max_train"], "max_heldout": DRY["max_heldout"],
                                  "memorisation": m, "walk": w, "guided": g, "windows": win,
                                  "arithmetic": a})


class Figures:
    def __init__(self, stage: Stage, checkpoints: Path, out: Path, shipped_dir: Path):
        self.stage, self.out = stage, out
        self.cfg: FiguresConfig = _shrink(stage.section) if stage.dry_run else stage.section
        self.dev = stage.device
        d = stage.params.data
        self.load_kw = dict(root=d.root, download=d.download, search=d.search, dry_run=stage.dry_run)
        self.paths = sorted((checkpoints / self.cfg.model).glob("seed*.pt"))
        if not self.paths:
            raise ReproError(f"no checkpoints in {checkpoints / self.cfg.model}; run the "
                             f"train@{self.cfg.model} stage first (dvc repro train@{self.cfg.model})")
        self.checkpoints = checkpoints
        self.metrics: dict[str, dict] = {}
        self.runs: dict[str, tuple[list[float], list[int], str, dict]] = {}
        self.extra_deviations: list[str] = []
        self.arith_deviations: list[str] = []  # of the Fig. 7/8 cells only
        self.facts: dict = {"judges": self.cfg.judges}
        self.shipped_dir = shipped_dir

    # ---------------------------------------------------------------- helpers
    def load(self, name: str, split: str, n: int | None, seed: int = 0) -> ImageSet:
        return load_dataset(name, split, max_images=n, seed=seed, **self.load_kw)

    def record(self, cid: str, value: float, seed: int, unit: str, **facts) -> None:
        runs, seeds, _, old = self.runs.setdefault(cid, ([], [], unit, {}))
        runs.append(float(value))
        seeds.append(seed)
        old.update(facts)

    def render01(self, variant, G, z: torch.Tensor) -> torch.Tensor:
        return to01(render(variant, G, z, batch_size=self.cfg.batch_size, reference=self.cfg.reference_z),
                    variant.spec.pixel_range).cpu()

    def grid(self, images: torch.Tensor, name: str, title: str, nrow: int | None = None) -> None:
        save_grid(images, self.out / name, nrow=nrow, title=title)

    # ---------------------------------------------------------------- data and judges
    def prepare(self, ckpt: dict) -> None:
        cfg = self.cfg
        if ckpt["config"].get("dataset") != cfg.dataset and not self.stage.dry_run:
            raise ReproError(f"{self.paths[0]} was trained on {ckpt['config'].get('dataset')!r} but "
                             f"figures.dataset is {cfg.dataset!r}; make them agree")
        if ckpt.get("shipped") and shipped_note(ckpt) not in self.extra_deviations:
            self.extra_deviations.append(shipped_note(ckpt))
        limit = ckpt["config"].get("max_images")
        n_train = min(x for x in (limit, cfg.max_train) if x is not None) if (limit or cfg.max_train) else None
        # Same dataset, split and seed as training: the prefix / nested subset of its images.
        self.train = self.load(cfg.dataset, cfg.split, n_train, seed=ckpt["seed"])
        held_name = cfg.heldout_dataset or cfg.dataset
        if held_name == cfg.dataset and cfg.heldout_split == cfg.split:
            raise ReproError("figures.heldout_split must differ from figures.split: held-out images "
                             "must be images the model never saw")
        self.heldout = self.load(held_name, cfg.heldout_split, cfg.max_heldout)
        self.real = self.train.real and not self.stage.dry_run
        self.facts.update(train_source=self.train.source, heldout_source=self.heldout.source,
                          n_train_searched=len(self.train), n_heldout=len(self.heldout))
        if limit is None or cfg.max_train is not None and len(self.train) < (limit or 10 ** 12):
            if self.train.real:
                self.extra_deviations.append(f"nearest neighbours searched among {len(self.train)} "
                                             "of the model's training images")
        shipped = self._judges()
        if shipped is None:
            self.trained = judges.train(self.cfg, self.load, self.stage.params, self.stage.dry_run, self.dev)
        self._window_detector(shipped)
        self._attribute_classifier(shipped)

    def _judges(self) -> dict | None:
        """Shipped judges when the section names a folder (not in a dry run: its shrunk judge
        settings match no shipped folder); None: the stage trains its own."""
        name = self.cfg.shipped_judges
        if name is None or self.stage.dry_run:
            return None
        shipped = judges.install(self.shipped_dir / name, self.cfg, self.dev)
        self.facts["judges_from"] = shipped["note"]
        return shipped

    def _window_detector(self, shipped: dict | None) -> None:
        cfg, w = self.cfg, self.cfg.windows
        self.boxes_given = None
        if w.annotations is not None and not self.stage.dry_run:
            self.boxes_given = windows.load_boxes(w.annotations, w.n_samples, w.render_seed,
                                                  dataset_spec(cfg.dataset).image_size)
            self.detector = None  # trained per seed on the annotated samples (see windows_fig)
            return
        self.detector = shipped["window"] if shipped else self.trained["window"]
        # Measured on held-out real images (prepare() checks they are not the training split)
        # drawn by the judge seed, so the gate's seed sweep varies the test draw even when the
        # detector is a fixed, shipped one.
        test = self.load(cfg.heldout_dataset or cfg.dataset, cfg.heldout_split, w.detector_test,
                         seed=1 + cfg.judge_seed)
        x, m, stand_in = judges.window_data(test, self.stage.dry_run)
        if stand_in:
            self.extra_deviations.append("dry run: stand-in window masks")
        truth = m[:, 0].flatten(1).sum(1) >= nets.MIN_WINDOW_PIXELS
        pred = nets.has_window(nets.predict(self.detector, x, self.dev)[:, 0])
        self.detector_acc = (pred == truth).float().mean().item() if len(truth) else float("nan")
        # The realism yardstick of the samples (samples()): how often the same detector finds a
        # window in held-out real images, which the generator never saw.
        held = nets.predict(self.detector, u8_to01(self.heldout.images), self.dev)[:, 0]
        self.real_window_rate = nets.has_window(held).float().mean().item()
        if self.real_window_rate == 0:
            self.extra_deviations.append("the window detector finds no window in any held-out "
                                         "real image: the generators' realism is not measured")

    def _attribute_classifier(self, shipped: dict | None) -> None:
        a = self.cfg.arithmetic
        made = shipped or self.trained
        self.attr_net, self.attr_source = made["attributes"], made["attribute_source"]
        test_set = self.load(a.dataset, a.test_split, a.max_test, seed=2 + self.cfg.judge_seed)
        x_test, y_test, devs = judges.attribute_data(self.cfg, test_set, a.test_split, a.max_test,
                                                     self.stage.params, self.stage.dry_run)
        for d in made["deviations"] + devs:
            if d not in self.arith_deviations:
                self.arith_deviations.append(d)
        pred = nets.predict(self.attr_net, x_test, self.dev) > 0.5
        self.attr_acc = (pred == y_test.bool()).float().mean(0).tolist()

    def classify(self, x01: torch.Tensor) -> torch.Tensor:
        return nets.predict(self.attr_net, x01, self.dev)

    # ---------------------------------------------------------------- figures
    def samples(self, variant, G, seed: int, fig: str, label: str, draw: bool) -> None:
        m = self.cfg.memorisation
        x = self.render01(variant, G, sample_z(variant, m.n_samples, seed + 2, self.dev))
        res = memorisation.memorisation(x, u8_to01(self.train.images), u8_to01(self.heldout.images), self.dev)
        self.record(f"{fig}/lsun_samples_{label}/nn_train_over_heldout_l2", res["ratio"], seed, "ratio",
                    n_samples=m.n_samples, sample_median_l2=res["sample_median"],
                    heldout_median_l2=res["heldout_median"])
        self.record(f"{fig}/lsun_samples_{label}/nn_train_over_heldout_l2_se", res["ratio_se"], seed,
                    "ratio", n_samples=m.n_samples, how="bootstrap over samples and held-out images")
        if self.detector is not None and self.real_window_rate > 0:
            # Has the generator learned its data? Blurry or broken samples hold no window the
            # detector recognises; a learned generator draws them about as often as real rooms
            # hold them (threshold: repro.report.claims.LEARNED_RATIO).
            rate = nets.has_window(nets.predict(self.detector, x, self.dev)[:, 0]).float().mean().item()
            self.record(f"{fig}/lsun_samples_{label}/window_rate_vs_real", rate / self.real_window_rate,
                        seed, "ratio", n_samples=m.n_samples, sample_window_rate=rate,
                        real_window_rate=self.real_window_rate, n_heldout=len(self.heldout),
                        judge="window detector trained on exact masks of real generated rooms")
        if draw:
            what = "after one epoch" if label == "1epoch" else "at the end of training"
            self.grid(to_u8(x[:m.grid]), f"{fig}_samples_{label}.png",
                      f"Fig. {fig[3:]}: samples {what}; data: {self.train.source}")
            k = m.pairs
            pairs = torch.cat([to_u8(x[:k]), self.train.images[res["sample_index"][:k]]])
            self.grid(pairs, f"{fig}_nearest_{label}.png",
                      f"Fig. {fig[3:]} check: top row samples, bottom row each one's nearest training "
                      f"image (L2); median NN distance / held-out real images' = {res['ratio']:.3f}", nrow=k)

    def latent_walk(self, variant, G, D, seed: int, draw: bool) -> None:
        w = self.cfg.walk
        anchors = sample_z(variant, w.rows * w.anchors, seed + 4, self.dev).view(w.rows, w.anchors, -1)
        zs = walk.walk_z(anchors, w.steps)  # (R, T, Z)
        frames = self.render01(variant, G, zs.flatten(0, 1))  # (R*T, C, H, W)
        T = zs.shape[1]
        pix = walk.smoothness(walk.step_sizes(frames.view(w.rows, T, -1)), w.jump_ratio)
        with torch.no_grad():
            feats = torch.cat([D.feature_vector(to_float(to_u8(frames[s:s + 256]), variant.spec.pixel_range)
                                                .to(self.dev)).cpu() for s in range(0, len(frames), 256)])
        dfe = walk.smoothness(walk.step_sizes(feats.view(w.rows, T, -1)), w.jump_ratio)
        facts = dict(rows=w.rows, anchors=w.anchors, frames_per_segment=w.steps, jump_ratio=w.jump_ratio)
        self.record("fig4/latent_walk/mean_walk_max_step_ratio_pixel", pix["mean_row_ratio"], seed,
                    "ratio", **facts)
        self.record("fig4/latent_walk/mean_walk_max_step_ratio_dfeat", dfe["mean_row_ratio"], seed,
                    "ratio", **facts)
        self.record("fig4/latent_walk/mean_step_pixel", pix["mean_step"], seed, "L2 [0,1] pixels", **facts)
        jumps = set(pix["jumps"]) | set(dfe["jumps"])
        self.record("fig4/latent_walk/n_jumps", len(jumps), seed, "steps", **facts)
        # counts (unit walks): the claim check derives the share and its binomial noise
        self.record("fig4/latent_walk/walks_with_jump", walk.jump_walks(jumps), seed, "walks", **facts)
        self.record("fig4/latent_walk/walks", w.rows, seed, "walks", **facts)
        if draw:
            shown = min(w.show, w.rows)
            flagged = torch.zeros(w.rows, T, dtype=torch.bool)
            for r, k in set(pix["jumps"]) | set(dfe["jumps"]):
                flagged[r, k + 1] = True
            images = frame(to_u8(frames[:shown * T]), flagged[:shown].flatten())
            self.grid(images, "fig4_latent_walk.png",
                      f"Fig. 4: {w.rows} walks through {w.anchors} random z each ({shown} shown, "
                      f"{w.steps} frames per "
                      f"segment); red frames follow a step > {w.jump_ratio}x the row's median "
                      f"({int(flagged.sum())} in all {w.rows} walks); largest step / "
                      f"median, mean over walks (max): pixels {pix['mean_row_ratio']:.2f} "
                      f"({pix['max_ratio']:.2f}), D features {dfe['mean_row_ratio']:.2f} "
                      f"({dfe['max_ratio']:.2f})", nrow=T)

    def guided_fig(self, variant, D, seed: int, draw: bool) -> None:
        g = self.cfg.guided
        # Training-split images drawn by the judge seed, so the drift gate's seed sweep measures
        # how much the saliency mass depends on which images are shown (the D itself may be a
        # fixed, shipped one)
        data = self.load(self.cfg.dataset, self.cfg.split, g.images, seed=4 + self.cfg.judge_seed)
        masks = self._object_masks(data)
        measured = masks is not None
        masks = masks if measured else torch.zeros(len(data), *data.images.shape[-2:], dtype=torch.bool)
        x = to_float(data.images, variant.spec.pixel_range).to(self.dev)
        out = {"trained": guided.analyse(D, x, masks.to(self.dev), g.features, g.top)}
        # One random D's mass moves with its init (the gate measured 0.41-0.53 over seeds):
        # the cell is the mean over `random_inits` of them; the figure shows the first.
        randoms = []
        for k in range(g.random_inits):
            torch.manual_seed(seed + 5 + 1000 * k)
            random_d = variant.build_discriminator().to(self.dev)
            randoms.append(guided.analyse(random_d, x, masks.to(self.dev), g.features, g.top))
        out["random"] = {**randoms[0], "mass": sum(r["mass"] for r in randoms) / len(randoms)}
        for name in out:
            if measured:
                self.record(f"fig5/guided_backprop/object_mass_{name}", out[name]["mass"], seed, "share",
                            objects=sorted(data.masks) or ["stand-in box"], features=g.features,
                            top=g.top, object_area_share=masks.float().mean().item(),
                            **({"random_inits": g.random_inits} if name == "random" else {}))
        if measured:
            self.record("fig5/guided_backprop/trained_over_random_concentration",
                        out["trained"]["mass"] / max(out["random"]["mass"], 1e-12), seed, "ratio")
            self.record("fig5/guided_backprop/trained_over_random_concentration_se",
                        guided.ratio_se(out["trained"], randoms), seed, "ratio",
                        how="over the images analysed and the random Ds' inits")
        if draw:
            for name, res in out.items():
                idx, vis = res["index"], guided.visualise(res["grads"].cpu())  # (F, top), (F, top, C, H, W)
                rows = torch.stack([torch.stack([data.images[idx[f, t]], vis[f, t]])
                                    for f in range(len(idx)) for t in range(idx.shape[1])])
                mean = f" (mean of {g.random_inits} random Ds; this is the first)" if name == "random" else ""
                self.grid(rows.flatten(0, 1), f"fig5_guided_{name}.png",
                          f"Fig. 5: {name} D, first {g.features} features of the last conv layer (one row "
                          f"each): top-{g.top} images and their guided backprop; saliency mass on "
                          f"objects {res['mass']:.3f}{mean}", nrow=2 * idx.shape[1])

    def _object_masks(self, data: ImageSet) -> torch.Tensor | None:
        if data.masks:
            return torch.stack(list(data.masks.values())).any(0)  # (N, H, W): bed | window
        if self.stage.dry_run:
            m = torch.zeros(len(data), 64, 64, dtype=torch.bool)
            m[:, 16:48, 16:48] = True
            return m
        self.extra_deviations.append(f"{self.cfg.dataset} has no object masks: Fig. 5 is drawn "
                                     "but its number is not measured")
        return None


def _load(path: Path, variant_name: str, device: torch.device, key: str = "figures.variant"):
    variant, G, D, ckpt = build_from_checkpoint(path, device=device)
    if variant.spec.name != variant_name:
        raise ReproError(f"{path} holds variant {variant.spec.name!r}, but {key} is "
                         f"{variant_name!r}; fix the profile")
    return variant, G, D, ckpt


def run(checkpoints: Path, metrics_path: Path, figures_dir: Path, provenance_dir: Path,
        shipped: Path) -> None:
    from repro.figures import editing

    stage = Stage.open("figures", FiguresConfig, "figures")
    F = Figures(stage, checkpoints, figures_dir, shipped)
    cfg = F.cfg
    timings: dict[str, float] = {}
    data_sources = set()
    for i, path in enumerate(F.paths):
        variant, G, D, ckpt = _load(path, cfg.variant, stage.device)
        data_sources.add(ckpt.get("data_source"))
        # The seed of the figures' z samples: the generator's, offset by judge_seed.
        seed, draw = ckpt["seed"] + cfg.judge_seed, i == 0
        if i == 0:
            t0 = time.perf_counter()
            F.prepare(ckpt)
            timings["judges"] = round(time.perf_counter() - t0, 2)
            first = path.parent / f"epoch1_seed{ckpt['seed']}.pt"
            if first.is_file():
                v1, G1, _, _ = _load(first, cfg.variant, stage.device)
                F.samples(v1, G1, seed, "fig2", "1epoch", draw)
            else:
                F.extra_deviations.append(f"no one-epoch checkpoint {first}: Fig. 2 not drawn")
        for name, step in (("samples", lambda: F.samples(variant, G, seed, "fig3", "final", draw)),
                           ("walk", lambda: F.latent_walk(variant, G, D, seed, draw)),
                           ("guided", lambda: F.guided_fig(variant, D, seed, draw)),
                           ("windows", lambda: editing.windows_fig(F, variant, G, seed, draw))):
            t0 = time.perf_counter()
            step()
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 2)
    arith_model = cfg.arithmetic.model or cfg.model
    arith_paths = F.paths if arith_model == cfg.model else sorted((checkpoints / arith_model).glob("seed*.pt"))
    if not arith_paths:
        raise ReproError(f"no checkpoints in {checkpoints / arith_model} for figures.arithmetic.model; "
                         f"run the train@{arith_model} stage first")
    t0 = time.perf_counter()
    arith_variant, key = ((cfg.arithmetic.variant, "figures.arithmetic.variant")
                          if cfg.arithmetic.variant else (cfg.variant, "figures.variant"))
    for i, path in enumerate(arith_paths):
        variant, G, _, ckpt = _load(path, arith_variant, stage.device, key)
        editing.arithmetic_fig(F, variant, G, ckpt["seed"] + cfg.judge_seed, i == 0)
    timings["arithmetic"] = round(time.perf_counter() - t0, 2)

    diff = FIGURES.diff("figure", "", {"real_data": F.train.real, "dry_run": stage.dry_run,
                                       "dataset": cfg.dataset, "variant": cfg.variant})
    deviations = stage.deviations(*F.extra_deviations) + diff_lines(diff)
    if cfg.arithmetic.dataset != "celeba" or cfg.dataset != "lsun_bedroom":
        deviations.append("figures drawn from a model of generated rooms, not LSUN bedrooms / faces")
    arith_dev = ["vector-arithmetic exemplars chosen automatically by the attribute classifier "
                 "(the paper chose them by hand)"] + F.arith_deviations
    protocol = stage.protocol(dataset=cfg.dataset, model=cfg.model, variant=cfg.variant,
                              generator_data=sorted(s for s in data_sources if s), **F.facts)
    metrics = {}
    for cid, (runs, seeds, unit, facts) in sorted(F.runs.items()):
        extra = arith_dev if cid.startswith(("fig7", "fig8")) else []
        metrics[cid] = {**cell(runs, seeds, unit, {**protocol, **facts}, deviations + extra,
                               not diff), "protocol_diff": diff}
    stage.write_metrics(metrics_path, metrics)
    stage.write_provenance(provenance_dir, seconds=timings, seeds=sorted({s for c in metrics.values()
                                                                         for s in c["seeds"]}),
                           figures=sorted(p.name for p in figures_dir.glob("fig*.png")))


@cli_errors
def main(argv: list[str] | None = None) -> None:
    stage_main(run, __doc__, ['checkpoints', 'metrics', 'figures', 'provenance', 'shipped'], argv)


if __name__ == "__main__":
    main()
