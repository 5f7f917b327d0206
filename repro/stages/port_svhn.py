"""Stage: port the authors' SVHN DCGAN checkpoint into a harness checkpoint, and prove the port.

    python -m repro.stages.port_svhn --out results/checkpoints/authors_svhn \
        --figure results/figures/table2_authors_svhn_samples.png --provenance results/provenance

The authors' files (Newmu/dcgan_code, 20 files, md5-pinned in repro.models.authors_svhn) are
looked for in the section's `folders`, then in `<data.root>/dcgan_code_svhn`; with `fetch`
and `data.download` they are downloaded there. Found: `<out>/authors.pt` (variant
`svhn32_authors`, loadable like any trained checkpoint) and a grid of generated samples, which
must look like SVHN house numbers. Not found and not `required`: `<out>/MISSING.json` says
why and what to do, the figure says the same, and Table 2 leaves the row out with that
reason; `required: true` (paper profile) makes it an error instead.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import PositiveInt

from repro.config import Section
from repro.data.base import to_uint8
from repro.errors import ReproError, cli_errors
from repro.models import authors_svhn as port
from repro.models.checkpoint import save_checkpoint
from repro.context import Stage
from repro.stages.common import path_args
from repro.train.sampling import save_grid
from repro.utils.io import write_json
from repro.utils.provenance import git_revision

CHECKPOINT_NAME = "authors.pt"
MISSING_NAME = "MISSING.json"


class PortConfig(Section):
    folders: list[str] = ["../shared/checkpoints/dcgan_code_svhn"]
    fetch: bool = True
    required: bool = False
    n_samples: PositiveInt = 100  # one batch: the ported G always uses batch statistics
    seed: int = 0


def find_checkpoint(cfg: PortConfig, root: str, download: bool) -> Path:
    """The first folder holding the verified files; fetched into <root>/dcgan_code_svhn if allowed."""
    home = Path(root) / "dcgan_code_svhn"
    problems = []
    for folder in [*map(Path, cfg.folders), home]:
        if not folder.is_dir():
            problems.append(f"{folder}: not found")
            continue
        try:
            return port.verify_folder(folder)
        except ReproError as err:
            problems.append(str(err))
    if cfg.fetch and download:
        try:
            return port.fetch_authors_svhn(home)
        except ReproError as err:
            problems.append(f"download into {home} failed: {err}")
    raise ReproError("the authors' SVHN checkpoint was not found: " + "; ".join(problems)
                     + f". Put the 20 files of {port.URL_BASE} in {home} (or one of "
                     "port_svhn.folders), or run online with data.download and port_svhn.fetch on")


def run(out: Path, figure: Path, provenance_dir: Path) -> None:
    stage = Stage.open("port_svhn", PortConfig, "port_svhn")
    cfg: PortConfig = stage.section
    if stage.dry_run:  # no downloads, and a missing checkpoint only leaves the row out
        cfg = cfg.model_copy(update={"fetch": False, "required": False})
    d = stage.params.data
    for stale in (out / CHECKPOINT_NAME, out / MISSING_NAME):
        stale.unlink(missing_ok=True)
    try:
        folder = find_checkpoint(cfg, d.root, d.download)
    except ReproError as err:
        if cfg.required:
            raise
        write_json(out / MISSING_NAME, {"reason": str(err)})
        _placeholder(figure, str(err))
        stage.write_provenance(provenance_dir, found=False, reason=str(err))
        print(f"port_svhn: {err}\nTable 2 will leave out the authors' row.")
        return
    G, D = port.load_authors_svhn(folder)
    md5 = {name: port.md5(folder / name) for name in sorted(port.PINNED_MD5)}
    save_checkpoint({
        "format": 1,
        "variant": port.SVHN32_AUTHORS.spec.name,
        "generator": G.state_dict(),
        "discriminator": D.state_dict(),
        "config": {**cfg.model_dump(mode="json"), "source_url": port.URL_BASE, "md5": md5},
        "git": git_revision(),
        "seed": None,  # the authors' run; its seed is not recorded
        "complete": True,
        "data_source": "real SVHN train (the authors' run, epoch 200)",
        "profile": stage.profile,
        "dry_run": False,
        "deviations": [],
    }, out / CHECKPOINT_NAME)
    with torch.no_grad():
        z = port.SVHN32_AUTHORS.sample_z(cfg.n_samples, generator=torch.Generator().manual_seed(cfg.seed))
        x = G(z)  # (n, 3, 32, 32) in [-1, 1]
    save_grid(to_uint8(x, "tanh"), figure, nrow=10, title="The authors' SVHN DCGAN, ported (Table 2 row)")
    stage.write_provenance(provenance_dir, found=True, md5_verified=True,
                           fingerprint=port.fingerprint(G, D))


def _placeholder(figure: Path, reason: str) -> None:
    import textwrap

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from repro.utils.io import save_figure
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.axis("off")
    ax.text(0, 1, "The authors' SVHN checkpoint was not available:\n\n"
            + textwrap.fill(reason, 80), va="top", ha="left", fontsize=7, family="monospace")
    save_figure(fig, figure)
    plt.close(fig)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = path_args(__doc__, ["out", "figure", "provenance"], argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run(args.out, args.figure, args.provenance)

if __name__ == "__main__":
    main()
