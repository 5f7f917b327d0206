"""The figures' judges: trained in the stage, or installed from a shipped folder.

A window detector (Figs. 2, 3, 6) and an attribute classifier (Figs. 7, 8) read generated
images (repro.figures.nets). They are measuring instruments, as the fixed Inception net
behind FID is one, and a number read through judges retrained in every run moves with their
seeds: in the drift gate's seed sweep, holding the judges fixed made Fig. 2/3's window-rate
ratios, Fig. 6's rate before the drop and Fig. 7's prior rate stable, where retrained judges
moved them past the gate's caps.

`figures.shipped_judges: <folder>` (under `paths.shipped`) installs judges that this module
trained once, with judge settings equal key for key to the section's (`settings`), verified
by md5 as a shipped generator is (repro.train.shipped). Their accuracy is still measured in
every run, on held-out images drawn by `figures.judge_seed`. Train and ship them with the
profile whose settings they must match (params.yaml's `profile`):

    python -m repro.figures.judges --name room_judges --profile cpu   # -> <paths.shipped>/room_judges
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from repro.data.base import ImageSet
from repro.data.fit import fit_to
from repro.data.idx import md5_file
from repro.data.loading import load_dataset
from repro.errors import ReproError, cli_errors
from repro.figures import nets
from repro.figures.common import u8_to01
from repro.figures.config import FiguresConfig
from repro.models.checkpoint import load_weights_file
from repro.train.shipped import MANIFEST, differing_keys, verify
from repro.utils.io import torch_save, write_json
from repro.utils.platform import fingerprint
from repro.utils.provenance import git_revision

WEIGHTS = "judges.pt"
SHIP_COMMAND = "python -m repro.figures.judges --name <folder> --profile cpu"
Loader = Callable[[str, str, "int | None", int], ImageSet]  # (dataset, split, max_images, seed)


# How each judge is trained (nets.fit's arguments), pinned in the manifest beside its data: a
# shipped folder trained with another recipe is refused like one trained on other data.
RECIPE = {"detector": {"width": 32, "batch_size": 32, "lr": nets.SEGMENTER_LR, "balance": True},
          "classifier": {"width": 16, "batch_size": 64, "lr": 2e-3, "balance": False}}


def settings(cfg: FiguresConfig) -> dict[str, Any]:
    """What the judges are made from; a shipped folder must have been trained with these."""
    w, a = cfg.windows, cfg.arithmetic
    return {"recipe": RECIPE, "dataset": cfg.dataset, "split": cfg.split, "judges": cfg.judges,
            "detector_images": w.detector_images, "detector_steps": w.detector_steps,
            "attribute_dataset": a.dataset, "attribute_split": a.split,
            "attribute_images": a.max_images, "classifier_steps": a.classifier_steps,
            "attributes": list(a.attributes), "fit": a.fit}


def seeds(cfg: FiguresConfig) -> list[int]:
    return [cfg.judge_seed + 1000 * k for k in range(cfg.judges)]


def window_data(data: ImageSet, dry_run: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(x in [0, 1], (N, 1, H, W) window masks, whether the masks are a dry run's stand-in)."""
    masks = data.masks.get("window")
    stand_in = masks is None
    if stand_in:
        if not dry_run:
            raise ReproError(f"{data.source} has no window masks; set figures.windows.annotations "
                             "to a box file (python -m repro.figures.annotate)")
        masks = torch.zeros(data.images.shape[0], 64, 64, dtype=torch.bool)
        masks[:, 8:24, 8:24] = True  # dry run: a fixed box exercises the path
    return u8_to01(data.images), masks[:, None], stand_in


def attribute_data(cfg: FiguresConfig, data: ImageSet, split: str, n: int | None,
                   params: Any, dry_run: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(x in [0, 1], (N, A) {0, 1} labels of `cfg.arithmetic.attributes`, fit deviations)."""
    a = cfg.arithmetic
    if data.masks:
        y, names = nets.room_attributes(data.masks)
    elif a.dataset == "celeba" and not dry_run:
        from repro.data.supplied import load_celeba_attributes

        d = params.data
        y, names = load_celeba_attributes(split, root=d.root, search=d.search, max_images=n,
                                          seed=2 + cfg.judge_seed)
    elif dry_run:  # stand-in images: random labels exercise the code path
        g = torch.Generator().manual_seed(3 + cfg.judge_seed)
        y, names = torch.randint(0, 2, (len(data), len(a.attributes)), generator=g), list(a.attributes)
    else:
        raise ReproError(f"no attribute labels for {a.dataset!r}; use synth_rooms or celeba")
    missing = [n for n in a.attributes if n not in names]
    if missing:
        raise ReproError(f"unknown attribute(s) {missing}; valid names: {', '.join(names)}")
    y = y[:, [names.index(n) for n in a.attributes]]
    # The attribute classifier reads 64x64 RGB: a fit that changes the images is a deviation
    # of the cells it judges (Figs. 7/8).
    data, devs = fit_to(data, 64, 3, a.fit, key="figures.arithmetic.fit")
    return u8_to01(data.images), y, [f"attribute classifier's images: {d}" for d in devs]


def _detector() -> nn.Module:
    return nets.Segmenter(1, width=RECIPE["detector"]["width"])


def _classifier(cfg: FiguresConfig) -> Callable[[], nn.Module]:
    return lambda: nets.AttributeNet(len(cfg.arithmetic.attributes), width=RECIPE["classifier"]["width"])


def _fit(make: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, steps: int,
         cfg: FiguresConfig, device: torch.device, judge: str, desc: str) -> nn.Module:
    r = RECIPE[judge]
    return nets.fit_judges(make, x, y, steps, r["batch_size"], seeds(cfg), device, desc,
                           lr=r["lr"], balance=r["balance"])


def train(cfg: FiguresConfig, load: Loader, params: Any, dry_run: bool,
          device: torch.device) -> dict[str, Any]:
    """Fit both judges under `seeds(cfg)` on the training split: {"window", "attributes"} nets
    (no window net when Fig. 6 reads hand-drawn boxes), the attribute data's source and its fit
    deviations."""
    w, a = cfg.windows, cfg.arithmetic
    window = None
    if w.annotations is None or dry_run:  # with boxes, Fig. 6 fits its detector per seed
        x, m, _ = window_data(load(cfg.dataset, cfg.split, w.detector_images, 1 + cfg.judge_seed),
                              dry_run)
        window = _fit(_detector, x, m, w.detector_steps, cfg, device, "detector", "window detector")
    fit_set = load(a.dataset, a.split, a.max_images, 2 + cfg.judge_seed)
    x, y, devs = attribute_data(cfg, fit_set, a.split, a.max_images, params, dry_run)
    attributes = _fit(_classifier(cfg), x, y, a.classifier_steps, cfg, device, "classifier",
                      "attribute classifier")
    return {"window": window, "attributes": attributes, "attribute_source": fit_set.source,
            "deviations": devs}


def _ensemble(make: Callable[[], nn.Module], n: int) -> nn.Module:
    """The module `nets.fit_judges` returns for `n` seeds, untrained: what a state dict loads into."""
    return make() if n == 1 else nets.MeanLogit([make() for _ in range(n)])


def install(folder: Path, cfg: FiguresConfig, device: torch.device) -> dict[str, Any]:
    """The shipped judges of `folder` on `device`, after every md5 and every judge setting
    matched: the same keys as `train` returns, plus `note` (what every cell they judge records)."""
    if not (folder / MANIFEST).is_file():
        raise ReproError(f"no shipped judges in {folder} (no {MANIFEST}); restore the folder from "
                         f"git, fix figures.shipped_judges, or ship them: {SHIP_COMMAND}")
    manifest = verify(folder)
    if manifest.get("kind") != "judges":
        raise ReproError(f"{folder} holds no shipped judges (its {MANIFEST} has kind "
                         f"{manifest.get('kind')!r}); set figures.shipped_judges to a judges folder")
    got, want = manifest.get("settings") or {}, settings(cfg)
    if got != want:
        diff = "; ".join(f"{k}: section {want.get(k)!r}, shipped {got.get(k)!r}"
                         for k in differing_keys(want, got))
        raise ReproError(f"{folder}'s judges were trained with other judge settings ({diff}); "
                         "make the figures section's settings equal the shipped ones, or drop "
                         "figures.shipped_judges to train the judges in the run")
    state = load_weights_file(folder / WEIGHTS, "shipped judges file", "restore the folder "
                              f"from git, or ship the judges again: {SHIP_COMMAND}")
    if not isinstance(state, dict):
        raise ReproError(f"{folder / WEIGHTS} holds a {type(state).__name__}, not the judges' "
                         f"state dicts; restore the folder from git, or ship them again: {SHIP_COMMAND}")
    nets_ = {"window": _ensemble(_detector, cfg.judges),
             "attributes": _ensemble(_classifier(cfg), cfg.judges)}
    for key, net in nets_.items():
        try:
            net.load_state_dict(state[key])
        except (KeyError, RuntimeError, TypeError, AttributeError) as err:
            raise ReproError(f"{folder / WEIGHTS} does not fit this code's {key} judge (the nets in "
                             f"repro/figures/nets.py changed since it was shipped: {str(err)[:200]}); "
                             f"ship them again: {SHIP_COMMAND}") from None
        net.to(device).eval()
    rev = str(manifest["git"].get("revision", "unknown"))[:10]
    note = (f"judges from a shipped folder ({manifest['name']}): trained by profile "
            f"{manifest['profile']} at git {rev}, seeds {manifest['seeds']}, not in this run")
    return {**nets_, "attribute_source": manifest["attribute_source"],
            "deviations": manifest["deviations"], "note": note}


def ship(name: str, cfg: FiguresConfig, profile: str, load: Loader, params: Any,
         out: Path) -> dict[str, Any]:
    """Train the judges of `cfg` and write `out/<name>/` (weights + manifest); returns the manifest."""
    if cfg.windows.annotations is not None:
        raise ReproError("figures.windows.annotations is set: that window detector learns the "
                         "boxes of each run's own samples, so it cannot be shipped")
    t0 = time.perf_counter()
    # On the CPU: a CPU rerun of the profile that shipped them retraces the same weights.
    judged = train(cfg, load, params, False, torch.device("cpu"))
    tmp, dest = out / f".{name}.shipping", out / name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch_save({k: judged[k].state_dict() for k in ("window", "attributes")}, tmp / WEIGHTS)
    manifest = {"name": name, "kind": "judges", "profile": profile, "settings": settings(cfg),
                "seeds": seeds(cfg), "git": git_revision(), "platform": fingerprint(),
                "wall_time_s": round(time.perf_counter() - t0, 1),
                "attribute_source": judged["attribute_source"], "deviations": judged["deviations"],
                "files": {WEIGHTS: {"md5": md5_file(tmp / WEIGHTS), "bytes": (tmp / WEIGHTS).stat().st_size}}}
    write_json(tmp / MANIFEST, manifest)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return manifest


@cli_errors
def main(argv: list[str] | None = None) -> None:
    from repro.config import PARAMS_FILE, PROFILES_DIR, available_profiles, load_params, load_section

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="folder to write under paths.shipped, e.g. room_judges")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE, help="params file (default: %(default)s)")
    ap.add_argument("--profile", help="the profile whose figures section sets the judges "
                                      "(default: the params file's)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.profile:
        valid = available_profiles(args.params.parent / PROFILES_DIR)
        if args.profile not in valid:
            raise ReproError(f"unknown profile {args.profile!r}; valid names: {', '.join(valid)}")
        params = params.model_copy(update={"profile": args.profile})
    if params.dry_run:
        raise ReproError(f"{args.params} sets dry_run: true; ship judges from real data only")
    cfg = load_section(FiguresConfig, "figures", params, args.params)
    d = params.data

    def load(name: str, split: str, n: int | None, seed: int) -> ImageSet:
        return load_dataset(name, split, max_images=n, seed=seed, root=d.root, download=d.download,
                            search=d.search, dry_run=False)

    out = Path(params.paths["shipped"])
    manifest = ship(args.name, cfg, params.profile, load, params, out)
    print(f"shipped judges {args.name} (profile {params.profile}, seeds {manifest['seeds']}, "
          f"{manifest['wall_time_s']} s) -> {out / args.name}")


if __name__ == "__main__":
    main()
