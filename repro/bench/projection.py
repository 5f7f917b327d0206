"""What the paper profile would cost on the GPU check's device, from the check's own rates.

Training: GPU-hours per `train.<name>` stage of experiments/paper.yaml = epochs (decay epochs
included) x images per epoch x seeds / the measured images/s of GANTrainer on that variant
(its fast path, at the check's batch size). The evaluation steps are projected from what the
check measured at its own sizes: the Table 3 stream to 10M samples x 10k queries, the L2-SVM
to 50,000 x 28,672 features, feature extraction per 100,000 images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.config import PROFILES_DIR, load_profile_by_name, validate
from repro.registry import DATASETS

PROFILE = "paper"
SVM_N = 50000  # Table 1's L2-SVM: 50,000 training rows of 28,672 features


def paper_train_stages(repo: Path, profile: str = PROFILE) -> dict[str, dict[str, Any]]:
    """Per train section of the profile (resolved and validated, defaults filled in as the
    train stage sees them): variant, dataset, images per epoch, epochs, seeds."""
    from repro.stages.train import TrainStageConfig

    sections = load_profile_by_name(profile, repo / PROFILES_DIR)["train"]
    stages = {}
    for name, raw in sections.items():
        sec = validate(TrainStageConfig, raw, f"{profile}.train.{name}")
        n = DATASETS.get(sec.dataset).spec.splits.get(sec.split, 0)
        if sec.max_images:
            n = min(n, sec.max_images)
        stages[name] = {"variant": sec.variant, "dataset": sec.dataset, "split": sec.split,
                        "images_per_epoch": n, "epochs": sec.epochs + sec.decay_epochs,
                        "seeds": len(sec.seeds), "batch_size": sec.batch_size,
                        "alternate_updates": sec.alternate_updates}
    return stages


def _ok(step: dict | None) -> bool:
    return bool(step) and not any(k in step for k in ("error", "skipped", "running"))


def _why(name: str, step: dict | None) -> str:
    if not step:
        return f"{name} is not among this mode's steps"
    reason = step.get("error") or step.get("skipped") or step.get("running")
    return f"{name} did not finish: {reason}"


def project(steps: dict[str, dict], stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `projection` record of bench_gpu.json from the finished steps (None where the step
    that measures a figure did not finish, with the reason)."""
    train, total = {}, 0.0
    for name, st in stages.items():
        step = steps.get(f"train/{st['variant']}")
        rec = dict(st)
        if _ok(step):
            rate = step["ours"]["value"]
            images = st["epochs"] * st["images_per_epoch"] * st["seeds"]
            rec.update(images_per_second=rate, measured_batch_size=step["sizes"]["batch_size"],
                       gpu_hours=images / rate / 3600)
            total += rec["gpu_hours"]
            if st["alternate_updates"]:
                rec["note"] = ("the section updates G and D on alternate minibatches; the rate "
                               "was measured updating both every step: an upper bound")
        else:
            rec.update(images_per_second=None, gpu_hours=None, why=_why(f"train/{st['variant']}", step))
        train[name] = rec
    out: dict[str, Any] = {"profile": PROFILE, "train": train,
                           "train_gpu_hours_total": total if all(
                               r["gpu_hours"] is not None for r in train.values()) else None}
    nn = steps.get("nn_stream")
    out["table3_stream_10M_x_10k_s"] = nn.get("projected_10M_vs_10k_s") if _ok(nn) else None
    svm = steps.get("svm")
    if _ok(svm):
        full = svm["full"]
        out["l2svm_50000x28672_s"] = full["seconds"] * SVM_N / full["n_train"]
        out["l2svm_basis"] = ("measured" if full["n_train"] == SVM_N else
                              f"measured on {full['n_train']} rows, scaled linearly in rows "
                              "(each Newton-CG iteration is linear in them; iterations assumed equal)")
    else:
        out["l2svm_50000x28672_s"] = None
    feats = steps.get("features")
    out["features_s_per_100k_images"] = 1e5 / feats["ours"]["value"] if _ok(feats) else None
    return out
