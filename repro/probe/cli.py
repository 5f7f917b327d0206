r"""Evaluate your own GAN with the paper's protocols (Tables 1-3), outside the pipeline.

Run from any folder, with PYTHONPATH pointing at your module (pytorch/examples-style DCGAN,
1-channel 32x32, `netD.main` an nn.Sequential, trained with normal z):

    python -m repro.probe --protocol table2 --dataset fashion_mnist --profile demo \
        --discriminator mygan:make_netD --weights netD.pt --layers main.1,main.4,main.7 --out o2
    python -m repro.probe --protocol table1 --dataset fashion_mnist --profile demo \
        --discriminator mygan:make_netD --weights netD.pt --layers main.1,main.4,main.7 --out o1
    python -m repro.probe --protocol table3 --profile demo --generator mygan:make_condG \
        --weights G.pt --z-dim 100 --n-classes 10 --z-dist normal --out o3

Models: `--discriminator pkg.module:factory` (any callable returning an nn.Module whose forward
takes a (B, C, H, W) batch) or `--generator pkg.module:factory` (a class-conditional G(z, y)
for Table 3); `--weights FILE` its state dict (torch.save(model.state_dict(), FILE), loaded with
weights_only=True). The input channels are read from the model's first Conv2d and the image
size from a probe forward pass (--channels / --image-size override); images are converted grey
<-> RGB and fitted by `--fit resize|pad` (pad: zero padding, e.g. 28 -> 32; for a generator:
crop its output back, e.g. 32 -> 28), each named as a deviation on every cell.

Layers: `--layers` names modules as `named_modules()` spells them; each output is max-pooled to
4x4 and concatenated (the paper's recipe: every conv layer of D, after its activation). For a
pytorch/examples D name the LeakyReLUs that follow its convolutions (main.1,main.4,main.7 for
32x32), not the final conv + sigmoid; the error lists the valid names.

Sizes: without --profile the paper's protocol (`--protocol table2 --show-spec` prints its fields
and values); `--profile smoke|demo|paper` takes the sizes of that profile's section (shipped with
the package: works from any folder); a YAML spec file `{protocol: table2, <field>: value}` as
--protocol sets any field. A dataset without a validation split gets one carved from its
training split (the paper's Table 2 rule). Before long work the probe prints its plan and an
estimated time; every phase shows a progress bar.

Datasets: {datasets}.

Writes `<out>/metrics/probe_<table>.json` (+ `.cells.json`; cells `probe/<table>/<row>/<column>`,
each with its `protocol_diff` against the paper's protocol and its deviations),
`<out>/provenance/probe_<table>.json` (factory, weights sha256, input, adaptations) and
`<out>/probe_<table>.md`, your rows beside the paper's published rows.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from repro.config import DataParams, Params, Section, validate
from repro.data.fit import FIT_CHOICES, fit_to
from repro.data.loading import dataset_spec, load_dataset
from repro.errors import ReproError, cli_errors
from repro.models.base import VariantSpec
from repro.probe import plan, report
from repro.probe.models import FittedG, Probed, UserVariant, build, infer_input, sha256_file
from repro.probe.profiles import default_search, profile_names, profile_section
from repro.protocols.probing import Source
from repro.protocols.generated import GENERATED_NN
from repro.published.protocol import RAW
from repro.registry import DATASETS
from repro.context import Stage
from repro.tables import TABLES, get_protocol
from repro.utils.device import resolve_device
from repro.utils.io import read_cells

PLAN_IMAGES = 1000  # training images the plan's time estimate is measured on
Z_DEFAULT = "uniform"  # the paper's: z uniform in [-1, 1]
# Section keys the probe does not use: the pipeline's rows (the probe brings its own) and the
# rows that are not probes of your model (Table 1's K-means, Table 2's KNN and supervised CNN).
NOT_PROBED = ("deviations", "models", "variants", "knn", "supervised", "kmeans")


@dataclass
class ProbeStage(Stage):
    """A stage whose every cell and provenance also record what the probe adapted (`facts`:
    the input read off the model, z's distribution) and which model ran (`provenance`)."""
    facts: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    # Every option the probe ran with: part of the key under which an interrupted probe's
    # finished rows are reused (repro.protocols.rows.stage_key), so a rerun with other
    # --layers, --z-dist or another factory measures again instead of resuming.
    identity: dict[str, str] = field(default_factory=dict)

    def protocol(self, **facts: Any) -> dict[str, Any]:
        return {**super().protocol(**facts), **self.facts}

    @property
    def fit_key(self) -> str:
        return "--fit"

    def write_provenance(self, out_dir, **extra: Any) -> None:
        probe = {**self.provenance, "adaptations": list(self.data_deviations)}
        super().write_provenance(out_dir, probe=probe, **extra)


def _config_type(protocol: str) -> type[Section]:
    return TABLES.get(protocol).config


def _scores_generators(protocol: str) -> bool:
    return TABLES.get(protocol).scorer is GENERATED_NN


def _section(protocol: str, profile: str | None, spec: dict) -> Section:
    data: dict = {}
    if profile:  # without one, the paper's protocol: each section's defaults
        data = profile_section(profile, protocol)
        # the profile's own deviations describe the pipeline's run (its datasets, its rows);
        # the probe's cells name each field that differs by its protocol diff instead
        data.pop("deviations", None)
    data.update(spec)
    return validate(_config_type(protocol), data, f"{profile or 'protocol'}.{protocol}")


def show_spec(protocol: str, profile: str | None) -> str:
    """The protocol's fields: the paper's value (the section's default) and the profile's."""
    paper = _config_type(protocol)().model_dump(mode="json")
    ours = _section(protocol, profile, {}).model_dump(mode="json") if profile else paper
    lines = [f"{protocol}: the probe's fields (set them in a YAML spec file passed as --protocol "
             f"FILE: {{protocol: {protocol}, <field>: <value>}})",
             f" {'field':<27} {'paper protocol':<30}" + (f" profile {profile} (*: differs)"
                                                          if profile else "")]

    def walk(a: dict, b: dict, prefix: str = "") -> None:
        for k, v in a.items():
            if k in NOT_PROBED:
                continue
            if isinstance(v, dict) and k != "n_samples":
                walk(v, b.get(k) or {}, f"{prefix}{k}.")
                continue
            mark = "*" if profile and b.get(k) != v else " "
            lines.append((f"{mark}{prefix + k:<27} {json.dumps(v):<30}"
                          + (f" {json.dumps(b.get(k))}" if profile else "")).rstrip())
    walk(paper, ours)
    fields = get_protocol(protocol).fields
    lines.append("compared on every cell (protocol_diff), paper values: "
                 + ", ".join(f"{f.name}={f.paper!r}" for f in fields))
    return "\n".join(lines)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = ", ".join(f"{n} ({'/'.join(DATASETS.get(n).spec.splits)})" for n in DATASETS.names())
    ap = argparse.ArgumentParser(prog="python -m repro.probe",
                                 description=__doc__.replace("{datasets}", names),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", required=True,
                    help=f"{', '.join(TABLES)} or a YAML spec file")
    ap.add_argument("--show-spec", action="store_true",
                    help="print the protocol's fields and their paper (and --profile) values")
    ap.add_argument("--dataset", help="a registered dataset (default: the protocol's); see above")
    ap.add_argument("--profile", help=f"take sizes from a profile: {', '.join(profile_names())} "
                    "(default: the paper's protocol)")
    who = ap.add_mutually_exclusive_group()
    who.add_argument("--discriminator", help="pkg.module:factory returning the D nn.Module")
    who.add_argument("--generator", help="pkg.module:factory returning a conditional G(z, y)")
    ap.add_argument("--weights", type=Path, help="state dict file (torch.save(m.state_dict()))")
    ap.add_argument("--layers", default="", help="comma-separated module names (discriminator); "
                    "for a pytorch/examples D its LeakyReLUs, e.g. main.1,main.4,main.7")
    ap.add_argument("--name", default="yours", help="the row id of your model in the cells")
    ap.add_argument("--pixel-range", choices=("tanh", "sigmoid"), default="tanh",
                    help="the model's image range: [-1, 1] (the paper's) or [0, 1]")
    ap.add_argument("--image-size", type=_positive, default=None,
                    help="D's input size (default: found by a probe forward pass)")
    ap.add_argument("--channels", type=_positive, default=None,
                    help="D's input channels (default: its first Conv2d's in_channels)")
    ap.add_argument("--fit", choices=FIT_CHOICES, default=None,
                    help="fit images to the model (and G's output to the protocol): resize "
                         "(bilinear) or pad (zero padding 28 -> 32; G's output cropped back); "
                         "default: the protocol section's (resize)")
    ap.add_argument("--z-dim", type=_positive, default=100)
    ap.add_argument("--z-dist", choices=("uniform", "normal"), default=None,
                    help="G's z prior: uniform on [-1, 1] (default, the paper's) or normal "
                         "(torch.randn, what pytorch/examples train with)")
    ap.add_argument("--n-classes", type=_positive, default=10)
    ap.add_argument("--pretraining-data", default="unknown",
                    help="what the model was trained on (a registered dataset name, e.g. "
                         "imagenet32 for Table 1's protocol)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the raw-pixel row")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--data-root", default="data",
                    help="folder datasets are read from and downloaded to (default: ./data)")
    ap.add_argument("--data-search", action="append", default=None, metavar="DIR",
                    help="read-only folder searched first for dataset files (repeatable; "
                         "default: the repository's params.yaml data.search folders)")
    ap.add_argument("--no-download", action="store_true", help="never download a dataset")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if not args.show_spec and not (args.discriminator or args.generator):
        ap.error("one of --discriminator or --generator is required (or --show-spec)")
    if not args.show_spec and args.out is None:
        ap.error("--out is required")
    return args


def _for_probe(message: str) -> str:
    """A data error worded for the pipeline's params.yaml, reworded for the probe's flags."""
    message = re.sub(r"the `data\.root` key in params\.yaml", "--data-root", message)
    message = re.sub(r"`?data\.search`?", "--data-search DIR", message)
    if message.startswith("could not download"):
        message += ("; or pass a folder that already holds the files with --data-search DIR "
                    "(--no-download: never download)")
    return message


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spec: dict = {}
    protocol = args.protocol
    if protocol.endswith((".yaml", ".yml", ".json")):
        path = Path(protocol)
        if not path.is_file():
            raise ReproError(f"--protocol {path}: no such file; pass {'|'.join(TABLES)} or the "
                             "path of a YAML spec file with a `protocol:` key")
        spec = yaml.safe_load(path.read_text())
        if not isinstance(spec, dict) or "protocol" not in spec:
            raise ReproError(f"{path} must be a mapping with a `protocol:` key "
                             f"({'|'.join(TABLES)})")
        protocol = spec.pop("protocol")
    get_protocol(protocol)  # a clear error for an unknown name
    if protocol == "figures":
        raise ReproError(f"the figures have no probe protocol; use {', '.join(TABLES)}")
    if args.show_spec:
        print(show_spec(protocol, args.profile))
        return
    if _scores_generators(protocol) != bool(args.generator):
        what = ("generator (--generator)" if _scores_generators(protocol)
                else "discriminator (--discriminator)")
        raise ReproError(f"--protocol {protocol} scores a {what}")
    spec.update({k: v for k, v in (("dataset", args.dataset), ("fit", args.fit)) if v})
    cfg = _section(protocol, args.profile, spec)
    dataset_spec(cfg.dataset)  # an unknown name: the valid ones, before any work
    notes = []
    valid = getattr(cfg, "valid_split", None)
    if valid and valid not in dataset_spec(cfg.dataset).splits:
        cfg = cfg.model_copy(update={"valid_split": None})
        notes.append(f"{cfg.dataset} has no {valid!r} split: {cfg.n_valid:,} validation images "
                     f"are carved from {cfg.train_split!r} (seeded), the paper's Table 2 rule")
    search = args.data_search if args.data_search is not None else default_search()
    params = Params(profile=args.profile or "protocol", device=args.device,
                    data=DataParams(root=args.data_root, download=not args.no_download,
                                    search=search))
    name = f"probe_{protocol}"
    stage = ProbeStage(name, protocol, cfg, params, resolve_device(args.device))
    who = args.discriminator or args.generator
    stage.identity = {k: str(v) for k, v in sorted(vars(args).items())}
    stage.provenance = {"factory": who, "weights": str(args.weights) if args.weights else None,
                        "weights_sha256": sha256_file(args.weights) if args.weights and
                        Path(args.weights).is_file() else None,
                        "command": ["python", "-m", "repro.probe", *(argv or sys.argv[1:])],
                        "profile": args.profile, "notes": notes}
    out = Path(args.out)
    metrics_path = out / "metrics" / f"{name}.json"
    prefix = f"probe/{protocol}"
    own = sorted(set(spec) - {"dataset", "fit"})
    sizes = (f"profile `{args.profile}`" if args.profile else "the paper's protocol") + (
        f", with {', '.join(own)} from {args.protocol}" if own else "")
    print(f"probe plan: {protocol}'s protocol on {cfg.dataset} (sizes: {sizes}), device "
          f"{stage.device.type}")
    for line in notes:
        print(f"  {line}")
    try:
        if _scores_generators(protocol):
            _probe_generator(args, protocol, stage, metrics_path, out, prefix)
        else:
            _probe_discriminator(args, protocol, stage, metrics_path, out, prefix)
    except ReproError as err:
        raise type(err)(_for_probe(str(err))) from None
    metrics = read_cells(metrics_path)
    sha = stage.provenance["weights_sha256"] or "-"
    header = [f"Protocol `{protocol}` on `{cfg.dataset}`, sizes: {sizes} (each field that "
              "differs from the paper's is in `Comparable` and on the cell); model "
              f"`{who}`, weights `{args.weights}` (sha256 {sha[:16]}).",
              *[f"- {k}: {v}" for k, v in stage.facts.items()],
              *[f"- adapted: {d}" for d in stage.data_deviations
                + stage.provenance.get("generator_fit", [])],
              *[f"- {n}" for n in notes],
              f"- cells: `{metrics_path}`"]
    report.write(protocol, metrics, out / f"{name}.md", dataset=cfg.dataset, header=header)
    print(f"probe: {len(metrics)} cells -> {metrics_path}; report -> {out / f'{name}.md'}")


def _probe_discriminator(args, protocol: str, stage: ProbeStage, metrics_path: Path, out: Path,
                         prefix: str) -> None:
    from repro.protocols.runner import run_table

    model = build(args.discriminator, args.weights)
    channels, size, how = infer_input(model, args.channels, args.image_size)
    stage.facts["input"] = f"{channels}x{size}x{size} (read from {how})"
    stage.provenance["input"] = {"channels": channels, "image_size": size, "found_by": how}
    layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    probed = Probed(model, layers, pixel_range=args.pixel_range, image_size=size,
                    channels=channels, what=f"{args.discriminator} features ({', '.join(layers)}, "
                    "each max-pooled to 4x4)", data_source=args.pretraining_data)
    srcs = [Source(args.name, args.discriminator, args.weights, module=probed)]
    if not args.no_baseline:
        srcs.append(Source("raw_pixels", RAW, None))
    print(f"  input: {stage.facts['input']}; the dataset is fitted to it (--fit "
          f"{stage.section.fit}), each change a deviation on the cells")
    cfg, d = stage.section, stage.params.data
    sample = load_dataset(cfg.dataset, cfg.train_split, root=d.root, download=d.download,
                          search=d.search, max_images=PLAN_IMAGES, seed=cfg.seed)
    sample = fit_to(sample, size, channels, cfg.fit)[0]  # (the run's own fit is recorded)
    for line in plan.discriminator(TABLES.get(protocol), cfg, probed, len(srcs), stage.device,
                                   carved=not getattr(cfg, "valid_split", "x"), sample=sample):
        print(line)
    # the harness's rows that are not probes (Table 2's KNN and supervised CNN) are not your
    # model's: see the pipeline for them
    run_table(TABLES.get(protocol), stage, None, metrics_path, out / "provenance",
              srcs=srcs, cell_prefix=prefix, input_shape=(size, channels), harness_rows=False)


def _probe_generator(args, protocol: str, stage: ProbeStage, metrics_path: Path, out: Path,
                     prefix: str) -> None:
    from repro.protocols.runner import run_table

    G = build(args.generator, args.weights)
    z_dist = args.z_dist or Z_DEFAULT
    z_how = ("--z-dist" if args.z_dist else
             f"the default ({Z_DEFAULT} on [-1, 1], the paper's; a G trained with torch.randn "
             "needs --z-dist normal)")
    raw = UserVariant(VariantSpec(name=args.name, image_size=0, channels=0, z_dim=args.z_dim,
                                  z_dist=z_dist, n_classes=args.n_classes,
                                  pixel_range=args.pixel_range, feature_dim=0,
                                  description=args.generator))
    try:
        with torch.no_grad():
            x = G(raw.sample_z(2), torch.arange(2) % max(args.n_classes, 1))
    except (TypeError, RuntimeError, ValueError) as err:
        raise ReproError(f"{args.generator}(): G(z, y) with z (2, {args.z_dim}) and int labels "
                         f"failed ({err}); Table 3 needs a class-conditional G of that shape "
                         "(set --z-dim, --n-classes)") from None
    if x.dim() != 4:
        raise ReproError(f"{args.generator}() makes outputs of shape {tuple(x.shape)}, not images "
                         "(B, C, H, W)")
    fitted = FittedG(G, tuple(x.shape[1:]), 1, 28, stage.section.fit, args.pixel_range)
    variant = UserVariant(VariantSpec(
        name=args.name, image_size=28, channels=1, z_dim=args.z_dim, z_dist=z_dist,
        n_classes=args.n_classes, pixel_range=args.pixel_range, feature_dim=0,
        description=args.generator))
    stage.facts.update(z_dist=f"{z_dist} (set by {z_how})",
                       input=f"G makes {'x'.join(map(str, x.shape[1:]))} images")
    stage.provenance.update(z_dist=z_dist, z_dist_set_by="--z-dist" if args.z_dist else "default",
                            generator_output=list(x.shape[1:]), generator_fit=fitted.deviations)
    print(f"  z: {stage.facts['z_dist']}")
    for d in fitted.deviations:
        print(f"  adapted: {d}")
    for line in plan.generator(TABLES.get(protocol), stage.section, fitted, variant, stage.device):
        print(line)
    # the fit is the generator row's own deviation and preprocessing (repro.protocols.generated
    # puts a source's on that row's cells only, not on the real-data row)
    facts = {"seed": 0, "data_source": args.pretraining_data, "deviations": fitted.deviations,
             "preprocessing": fitted.deviations, "dry_run": False}
    # the real-data row stays: it is the reference a user's samples are read against
    run_table(TABLES.get(protocol), stage, None, metrics_path, out / "provenance",
              srcs=[Source(args.name, args.generator, args.weights,
                           module=(variant, fitted, facts))], cell_prefix=prefix)
