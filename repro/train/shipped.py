"""Shipped checkpoints: weights the harness itself trained, committed under `paths.shipped`.

Some models cannot be trained within the default profile's 15-minute CPU budget and still
learn their data. As model zoos do, the default profile then installs a checkpoint that a
longer profile (`cpu`, `dvc exp run -S profile=cpu`) trained, instead of training a model
that has not learned. A `train.<name>` section asks for it with `shipped: <folder>`; the rest
of the section must equal, key for key, the section the checkpoint was trained with (the
checkpoint carries it), so the profile states exactly how its weights were made.

A shipped folder holds weights-only checkpoints (no optimiser or RNG state), the sample grids
and DVCLive logs of the run, and `manifest.json`: each file's md5 and size, and the run's
provenance (profile, git revision, seeds, params hash, platform, wall time). Installing
verifies every md5 first, so a truncated, LFS-pointer or edited file is refused with one
error; nothing is copied until all files check out.

The checkpoints are stored packed (`seed0.pt` as `seed0.pt.xz4`, see `pack`): losslessly and
smaller (compare the packed file with the manifest's unpacked `bytes`), so that the working
tree and the GPU check's wheels fit the lent GPU machine's transfer limit
(tests/test_tree_size.py). The manifest's md5 and size are the unpacked file's:
installing restores exactly the bytes the run wrote and checks them.

    python -m repro.train.shipped --name lsun64 --run /path/to/cpu/run --out results/shipped

`--run` is the root of a finished run of the longer profile: it reads
`<run>/checkpoints/<name>`, `<run>/live/<name>` and `<run>/provenance/train_<name>.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.data.idx import md5_file
from repro.errors import ReproError, cli_errors
from repro.models.checkpoint import save_checkpoint
from repro.utils.io import write_json

MANIFEST = "manifest.json"
# What a shipped checkpoint keeps: everything its consumers read, nothing needed to resume.
DROPPED_KEYS = ("opt_g", "opt_d", "noise_rng", "cpu_rng")
CHECKPOINT_GLOBS = ("seed*.pt", "epoch1_seed*.pt")
COPIED_GLOBS = ("samples_*.png",)
PACKED = ".xz4"  # suffix of a packed checkpoint


def pack(data: bytes) -> bytes:
    """xz of `data` regrouped into four byte planes (byte k of every 4-byte word together):
    float32 weights' sign and exponent bytes then compress well, their mantissas barely
    (plain xz gains about half as much). Lossless; `unpack` inverts it."""
    n4 = len(data) // 4 * 4
    planes = np.frombuffer(data, np.uint8, n4).reshape(-1, 4).T.tobytes()
    return lzma.compress(len(data).to_bytes(8, "little") + planes + data[n4:], preset=9)


def unpack(blob: bytes) -> bytes:
    raw = lzma.decompress(blob)
    n = int.from_bytes(raw[:8], "little")
    n4 = n // 4 * 4
    return np.frombuffer(raw, np.uint8, n4, offset=8).reshape(4, -1).T.tobytes() + raw[8 + n4:]


def stored_bytes(folder: Path, rel: str) -> bytes:
    """The content of shipped file `rel`: as stored, or unpacked from `rel` + PACKED."""
    path, packed = folder / rel, folder / (rel + PACKED)
    if path.is_file():
        return path.read_bytes()
    if packed.is_file():
        try:
            return unpack(packed.read_bytes())
        except (lzma.LZMAError, ValueError) as err:
            raise ReproError(f"shipped file {packed} cannot be unpacked ({err}): truncated, a Git "
                             "LFS pointer, or edited; restore it from git") from None
    raise ReproError(f"shipped file {path} is missing; restore it from git")


def _section_dump(section: Any) -> dict[str, Any]:
    """The training config a shipped checkpoint must match: the section without `shipped`."""
    dump = section.model_dump(mode="json") if hasattr(section, "model_dump") else dict(section)
    dump.pop("shipped", None)
    return dump


def _worktree_changes(run: Path) -> list[str] | None:
    """`git status --porcelain` of the repository the run lives in: what "dirty" meant (for a
    profile run, typically only params.yaml's profile line and the run folder)."""
    try:
        proc = subprocess.run(["git", "-C", str(run), "status", "--porcelain"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def ship(name: str, run: Path, out: Path, final_only: bool = False) -> dict[str, Any]:
    """Write `out/<name>/` from a finished run; returns its manifest. `final_only`: leave out
    the one-epoch checkpoint (only the figures' model needs it, for Fig. 2)."""
    src, live, prov_file = run / "checkpoints" / name, run / "live" / name, run / "provenance" / f"train_{name}.json"
    if not prov_file.is_file():
        raise ReproError(f"{prov_file} not found: ship only a finished run (its train stage "
                         "writes the provenance file last)")
    prov = json.loads(prov_file.read_text())
    if prov.get("dry_run"):
        raise ReproError(f"{prov_file} is a dry run; ship only real runs")
    globs = CHECKPOINT_GLOBS[:1] if final_only else CHECKPOINT_GLOBS
    ckpts = sorted(p for g in globs for p in src.glob(g))
    if not ckpts:
        raise ReproError(f"no checkpoints (seed*.pt) in {src}")
    dest = out / name
    tmp = out / f".{name}.shipping"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in ckpts:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if path.name.startswith("seed") and not ckpt.get("complete"):
            raise ReproError(f"{path} is not a finished run (complete: false); finish it first")
        slim = {k: v for k, v in ckpt.items() if k not in DROPPED_KEYS}
        slim["shipped"] = {"name": name, "profile": prov["profile"], "git": ckpt["git"]}
        slim["deviations"] = list(ckpt.get("deviations", [])) + [shipped_note(slim)]
        save_checkpoint(slim, tmp / path.name)  # sealed again: its content changed
    for path in (p for g in COPIED_GLOBS for p in src.glob(g)):
        shutil.copy(path, tmp / path.name)
    if live.is_dir():
        shutil.copytree(live, tmp / "live")
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest = {
        "name": name, "variant": prov["variant"], "profile": prov["profile"],
        "seeds": prov["seeds"], "git": prov["git"], "worktree_changes": _worktree_changes(run),
        "params_hash": prov["params_hash"],
        "platform": prov.get("platform"), "wall_time_s": prov.get("wall_time_s"),
        # The section as a consumer compares it (`install`): without its own `shipped` key.
        "config": _section_dump(prov["config"]), "runs": prov.get("runs", []),
        "files": {str(p.relative_to(tmp)): {"md5": md5_file(p), "bytes": p.stat().st_size}
                  for p in files},
    }
    write_json(tmp / MANIFEST, manifest)
    for path in ckpts:  # after the manifest: it holds the unpacked files' md5s
        plain = tmp / path.name
        (tmp / (path.name + PACKED)).write_bytes(pack(plain.read_bytes()))
        plain.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return manifest


def shipped_note(ckpt: dict[str, Any]) -> str:
    """The deviation every cell computed from a shipped checkpoint carries."""
    s = ckpt["shipped"]
    rev = str(s["git"].get("revision", "unknown"))[:10]
    return (f"model from a shipped checkpoint ({s['name']}): trained by profile {s['profile']} "
            f"at git {rev}, seed {ckpt['seed']}, not in this run")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ReproError(f"shipped checkpoint folder {folder} has no {MANIFEST}; restore it from "
                         "git (git checkout -- <folder>) or train it with the longer profile "
                         "(dvc exp run -S profile=cpu) and ship it (python -m repro.train.shipped)")
    return json.loads(path.read_text())


def verify(folder: Path) -> dict[str, Any]:
    """The manifest, after every file's size and md5 matched it."""
    manifest = read_manifest(folder)
    for rel, want in manifest["files"].items():
        data = stored_bytes(folder, rel)
        if len(data) != want["bytes"] or hashlib.md5(data).hexdigest() != want["md5"]:
            raise ReproError(f"shipped file {folder / rel} does not match its md5 in "
                             f"{folder / MANIFEST} (truncated, a Git LFS pointer, or edited); "
                             "restore it from git")
    return manifest


def differing_keys(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """The keys on which two settings dicts differ (missing on one side included)."""
    return sorted(k for k in set(want) | set(got) if k not in want or k not in got or want[k] != got[k])


def install(folder: Path, section: Any, out: Path, live_dir: Path | None) -> dict[str, Any]:
    """Verify `folder` against the `train.<name>` section, then copy it into `out`/`live_dir`.

    Returns the manifest (the train stage's provenance records it)."""
    manifest = verify(folder)
    want, got = _section_dump(section), manifest["config"]
    if got != want:
        raise ReproError(f"{folder} was trained with another train section (differs in: "
                         f"{', '.join(differing_keys(want, got))}); make the section equal the shipped manifest's "
                         "config, or drop `shipped` to train it here")
    out.mkdir(parents=True, exist_ok=True)
    for rel in manifest["files"]:
        if rel.startswith("live/"):
            continue
        (out / rel).write_bytes(stored_bytes(folder, rel))
    if live_dir is not None and (folder / "live").is_dir():
        shutil.rmtree(live_dir, ignore_errors=True)
        shutil.copytree(folder / "live", live_dir)
    return manifest


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="the train.<name> run to ship, e.g. lsun64")
    ap.add_argument("--run", required=True, type=Path,
                    help="root of the finished run (holds checkpoints/, live/, provenance/)")
    ap.add_argument("--out", type=Path, default=Path("results/shipped"),
                    help="the shipped folder, paths.shipped in params.yaml (default: %(default)s)")
    ap.add_argument("--final-only", action="store_true",
                    help="ship the final checkpoints only, not the one-epoch one (Fig. 2 reads it)")
    args = ap.parse_args(argv)
    manifest = ship(args.name, args.run, args.out, args.final_only)
    size = sum(f["bytes"] for f in manifest["files"].values())
    print(f"shipped {args.name}: {len(manifest['files'])} files, {size / 1e6:.1f} MB -> "
          f"{args.out / args.name}")


if __name__ == "__main__":
    main()
