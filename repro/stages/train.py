"""Stage: train one GAN variant for every seed of its `train.<name>` section.

    python -m repro.stages.train --name mnist_cond --out results/checkpoints/mnist_cond \
        --live results/live/mnist_cond --provenance results/provenance [--resume]

Writes `<out>/seed<k>.pt` per seed, `<out>/epoch1_seed<k>.pt` (first seed, after one epoch),
sample grids after the first epoch and at the end
(`<out>/samples_epoch1.png`, `<out>/samples_final.png`, seed = first seed, the paper's
Figs. 2-3 and 9), and DVCLive logs of losses under `--live`. A section with `shipped: <folder>`
is not trained: the md5-pinned checkpoints the longer `cpu` profile trained with the same
section are installed from `--shipped <paths.shipped>` instead (repro.train.shipped). A
section the profile leaves out (`remove: [train.<name>]`; dvc.yaml has a stage for every train
section of the base profile) trains nothing: the stage writes `<out>/not_in_profile.json`, the
same note as its provenance and DVCLive metrics, and an empty plots folder, and exits 0.

Multi-GPU: `torchrun --nproc_per_node K -m repro.stages.train ...` (same arguments) trains with
DDP over K processes; rank 0 alone writes files (see repro.train.distributed).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from repro.config import in_profile, load_params
from repro.data.fit import Fit
from repro.data.loading import load_dataset
from repro.errors import ReproError, cli_errors
from repro.registry import MODELS
from repro.models.checkpoint import save_checkpoint, write_folder_record
from repro.context import Stage
from repro.train import distributed
from repro.train.config import TrainConfig
from repro.train.sampling import generate, save_grid
from repro.train.shipped import install
from repro.train.trainer import GANTrainer
from repro.utils.io import write_json

DRY_RUN_STEPS = 3


class TrainStageConfig(TrainConfig):
    """A `train.<name>` section as the stage reads it: the run's config plus how the dataset
    is fitted to the variant's input."""

    # "resize" (bilinear; grey replicated to RGB) or "pad" (zero padding, how the authors fed
    # 28x28 MNIST to a 32x32 model). A fit that changes the images is a deviation recorded in
    # the checkpoints (so in every cell that uses them) and the provenance (repro.data.fit).
    fit: Fit = "resize"
    # A folder under `paths.shipped` holding this section's checkpoints, trained by a longer
    # profile with exactly this section (repro.train.shipped): installed, md5-verified,
    # instead of trained here. None: train.
    shipped: str | None = None


def train_section(stage: Stage) -> TrainStageConfig:
    cfg: TrainStageConfig = stage.section
    if stage.dry_run:
        # Same model, batch size and data shapes; only the length changes.
        cfg = cfg.model_copy(update={"max_steps": DRY_RUN_STEPS, "log_every": 1})
    return cfg


def run(name: str, out: Path, live_dir: Path | None, provenance_dir: Path, resume: bool,
        shipped_dir: Path | None = None) -> None:
    params = load_params()
    if not in_profile(f"train.{name}", params):
        _not_in_profile(name, params.profile, params.dry_run, out, live_dir, provenance_dir)
        return
    stage = Stage.open(f"train_{name}", TrainStageConfig, f"train.{name}")
    if stage.section.shipped is not None:
        _install(stage, name, out, live_dir, provenance_dir, shipped_dir)
        return
    cfg = train_section(stage)
    rank = distributed.init_from_env(stage.device.type)  # 1 process unless under torchrun
    if rank.is_main:
        write_folder_record(out, name, cfg.variant, cfg.model_dump(mode="json"))
    variant = MODELS.get(cfg.variant)
    data_params = stage.params.data
    results = []
    for i, seed in enumerate(cfg.seeds):
        data = load_dataset(cfg.dataset, cfg.split, root=data_params.root,
                            download=data_params.download, search=data_params.search,
                            max_images=cfg.max_images, seed=seed,
                            dry_run=stage.dry_run)
        # Fitted here, where the choice is configured; the trainer's own fit is then a no-op.
        data = stage.fit(data, variant.spec.image_size, variant.spec.channels, cfg.fit)
        live = None
        if live_dir is not None and i == 0 and rank.is_main:
            from dvclive import Live

            live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, resume=resume)

        def log(metrics: dict[str, float], live=live) -> None:
            if live is None:
                return
            # The step first: DVCLive labels a row with the step current when it is logged.
            live.step = int(metrics["step"])
            for key in ("loss_d", "loss_g", "lr", "images_per_second"):
                live.log_metric(f"train/{key}", metrics[key])
            live.next_step()

        def epoch_end(epoch: int, trainer: GANTrainer, first=(i == 0)) -> None:
            if first and epoch == 0:
                _grid(trainer, out / "samples_epoch1.png", f"{name}: after 1 epoch")
                # The one-epoch generator (Fig. 2's memorisation check reads it); not named
                # seed*.pt, so consumers of final checkpoints never pick it up.
                save_checkpoint(trainer.state_dict(complete=False), out / f"epoch1_seed{seed}.pt")

        trainer = GANTrainer(cfg, data, stage.device, out / f"seed{seed}.pt",
                             extra={"profile": stage.profile, "dry_run": stage.dry_run,
                                    "deviations": stage.deviations()},
                             on_log=log, on_epoch=epoch_end)
        result = trainer.run(seed, resume=resume)
        if i == 0 and rank.is_main:
            _grid(trainer, out / "samples_final.png", f"{name}: end of training")
        if live is not None:
            live.end()
        results.append({"seed": seed, "steps": result.steps, "seconds": round(result.seconds, 2),
                        "images_per_second": round(result.images_per_second, 1),
                        "final_loss_d": result.final_loss_d, "final_loss_g": result.final_loss_g,
                        "data_source": trainer.data_source, "n_train": trainer.n,
                        "estimated_seconds": trainer.estimated_seconds})
    if rank.is_main:
        stage.write_provenance(provenance_dir, variant=variant.spec.name, seeds=list(cfg.seeds),
                               runs=results, world_size=rank.world_size)
    distributed.shutdown()


def _install(stage: Stage, name: str, out: Path, live_dir: Path | None, provenance_dir: Path,
             shipped_dir: Path | None) -> None:
    if shipped_dir is None:
        raise ReproError(f"train.{name}.shipped is set but no --shipped folder was given "
                         "(dvc.yaml passes paths.shipped)")
    manifest = install(shipped_dir / stage.section.shipped, stage.section, out, live_dir)
    write_folder_record(out, name, stage.section.variant, stage.section.model_dump(mode="json"))
    print(f"train {name}: installed shipped checkpoint {stage.section.shipped} (trained by profile "
          f"{manifest['profile']} at git {str(manifest['git'].get('revision'))[:10]}, md5-verified)")
    stage.write_provenance(provenance_dir, variant=manifest["variant"], seeds=manifest["seeds"],
                           runs=manifest["runs"], world_size=1,
                           shipped={k: manifest[k] for k in ("name", "profile", "git", "params_hash",
                                                             "platform", "wall_time_s", "files")})


def _not_in_profile(name: str, profile: str, dry_run: bool, out: Path, live_dir: Path | None,
                    provenance_dir: Path) -> None:
    """Record that the profile leaves `train.<name>` out. Earlier checkpoints in `out` go (DVC
    removes them before the stage runs; by hand they would be read as this profile's)."""
    note = {"stage": f"train_{name}", "section": f"train.{name}", "profile": profile,
            "dry_run": dry_run, "not_in_profile": f"profile {profile!r} leaves train.{name} out"}
    if out.exists():
        shutil.rmtree(out)
    write_json(out / "not_in_profile.json", note)
    if live_dir is not None:
        shutil.rmtree(live_dir, ignore_errors=True)
        (live_dir / "plots" / "metrics").mkdir(parents=True)
        write_json(live_dir / "metrics.json", note)
    write_json(provenance_dir / f"train_{name}.json", note)
    print(f"train {name}: not in profile {profile!r}; nothing trained")


def _grid(trainer: GANTrainer, path: Path, title: str) -> None:
    spec = trainer.variant.spec
    n = trainer.cfg.grid_size
    labels = None
    if spec.n_classes:
        # One row per class, as in the paper's MNIST collage.
        per = max(1, n // spec.n_classes)
        labels = torch.arange(spec.n_classes).repeat_interleave(per).to(trainer.device)
        n = len(labels)
    images, _ = generate(trainer.variant, trainer.G, n, seed=trainer.seed + 7, device=trainer.device,
                         labels=labels, batch_size=max(n, 100) if not spec.n_classes else n)
    nrow = (n // spec.n_classes) if spec.n_classes else None
    save_grid(images, path, nrow=nrow, title=f"{title} — data: {trainer.data_source}")


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="the train.<name> section of the profile")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--live", type=Path, default=None)
    ap.add_argument("--provenance", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="continue from <out>/seed<k>.pt")
    ap.add_argument("--shipped", type=Path, default=None,
                    help="the shipped-checkpoint folder (paths.shipped), read when the section "
                         "sets `shipped`")
    args = ap.parse_args(argv)
    run(args.name, args.out, args.live, args.provenance, args.resume, args.shipped)


if __name__ == "__main__":
    main()
