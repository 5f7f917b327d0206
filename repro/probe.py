"""Evaluate anyone's GAN with the paper's protocols (Tables 1-3), outside the pipeline.

    python -m repro.probe --protocol table2 --dataset svhn \
        --discriminator mypkg.dcgan:make_netD --weights netD.pt --layers main.2,main.5,main.8 \
        --out probe_out
    python -m repro.probe --protocol table3 --dataset mnist \
        --generator mypkg.cgan:make_G --weights G.pt --z-dim 100 --n-classes 10 --out probe_out

- `--discriminator pkg.module:factory`: any callable returning an nn.Module (its forward takes
  a (B, C, H, W) batch); `--weights FILE` its state dict (loaded with weights_only=True);
  `--layers` the (comma-separated) module names, as `named_modules()` spells them, whose outputs
  are the features: each max-pooled to a 4x4 grid and concatenated, the paper's recipe behind
  the 28,672-d (Table 1) and 7,168-d (Table 2) features. BN statistics follow the protocol's
  mode (`features.bn`: inferred once over the training images, as the authors did).
- `--generator pkg.module:factory`: a class-conditional generator `G(z, y)` -> images, scored
  by Table 3's protocol (1-NN fitted on its samples classifies the real test images).
- `--protocol table1|table2|table3` or a YAML spec file `{protocol: tableN, <section fields>}`;
  `--profile NAME` takes the sizes of `experiments/NAME.yaml`'s section (default: the paper's
  protocol itself); `--dataset NAME` any registered dataset.

Writes `<out>/metrics/probe_<table>.json` and its sibling `probe_<table>.cells.json` (the
shared metrics schema, repro.utils.io.read_cells reads them; cells
`probe/<table>/<row>/<column>`, each with its `protocol_diff` against the paper's protocol),
`<out>/provenance/probe_<table>.json` and `<out>/probe_<table>.md`, the user's rows beside the
paper's published rows of that table.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from torch import nn

from repro.config import DataParams, Params, PROFILES_DIR, Section, validate
from repro.errors import ReproError, cli_errors
from repro.models.base import Variant, VariantSpec
from repro.models.checkpoint import load_weights_file
from repro.models.layers import FEATURE_GRID, pooled_features
from repro.protocols.generated import GENERATED_NN
from repro.protocols.probing import Source
from repro.published.protocol import RAW
from repro.stages.common import Stage
from repro.tables import TABLES, get_protocol, load_published, load_tables
from repro.utils.device import resolve_device
from repro.utils.io import atomic_path, read_cells

def load_factory(spec: str) -> Callable[..., Any]:
    """'pkg.module:factory' -> the callable."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ReproError(f"{spec!r} must look like pkg.module:factory")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise ReproError(f"cannot import {module!r} ({err}); is it on PYTHONPATH?") from None
    except Exception as err:  # the user's module failed while importing
        detail = " ".join(str(err).split())[:300]
        raise ReproError(f"importing {module!r} raised {type(err).__name__}: {detail}; fix the "
                         "module so it imports cleanly") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ReproError(f"{module} has no {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ReproError(f"{spec} is not callable")
    return obj


def build(spec: str, weights: Path | None) -> nn.Module:
    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as err:  # the user's code: any failure is theirs, said in one line
        detail = " ".join(str(err).split())[:300]
        raise ReproError(f"{spec}() raised {type(err).__name__}: {detail}; the factory must "
                         "build the model when called with no arguments") from None
    if not isinstance(model, nn.Module):
        raise ReproError(f"{spec}() returned a {type(model).__name__}, not a torch nn.Module")
    if weights is not None:
        if not Path(weights).is_file():
            raise ReproError(f"--weights {weights} not found")
        state = load_weights_file(weights, "--weights", "save the model's state dict (torch.save("
                                  "model.state_dict(), FILE)) and pass that file")
        if isinstance(state, nn.Module) or not isinstance(state, dict):
            raise ReproError(f"{weights} must hold a state dict (model.state_dict())")
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ReproError(f"{weights} does not fit {spec}(): {err}") from None
    return model.eval()


class Probed(nn.Module):
    """A user's discriminator as the probes see it: `feature_vector(x)` is the named layers'
    outputs, each max-pooled to a 4x4 grid, flattened and concatenated (forward hooks, so any
    module works; the pooling happens inside the hook, before an in-place activation that
    follows the layer can change its output)."""

    def __init__(self, model: nn.Module, layers: list[str], *, pixel_range: str, image_size: int,
                 channels: int, what: str, data_source: str):
        super().__init__()
        modules = dict(model.named_modules())
        unknown = [n for n in layers if n not in modules or not n]
        if unknown or not layers:
            names = ", ".join(n for n in modules if n)
            raise ReproError(f"--layers {','.join(unknown) or '(none)'}: no such module; "
                             f"valid names: {names}")
        self.model, self.names = model, list(layers)
        self.layers = [modules[n] for n in layers]
        self.pixel_range, self.what, self.data_source = pixel_range, what, data_source
        self.image_size, self.channels = image_size, channels
        try:
            with torch.no_grad():
                outs = self._pooled(torch.zeros(2, channels, image_size, image_size), raw=True)
        except (RuntimeError, ValueError, TypeError) as err:
            detail = " ".join(str(err).split())[:300]
            raise ReproError(f"the model fails on a ({channels}, {image_size}, {image_size}) input "
                             f"({type(err).__name__}: {detail}); set --image-size and --channels "
                             "to the input size it takes") from None
        for name, o in zip(self.names, outs):
            if o.dim() != 4:
                raise ReproError(f"layer {name} outputs shape {tuple(o.shape)}, not (B, C, H, W); "
                                 "name conv layers (or their activations)")
            if o.shape[-1] % FEATURE_GRID or o.shape[-2] % FEATURE_GRID:
                raise ReproError(f"layer {name} outputs {tuple(o.shape[-2:])} maps, not a multiple "
                                 f"of {FEATURE_GRID}: the paper's recipe max-pools each layer to "
                                 f"{FEATURE_GRID}x{FEATURE_GRID} in equal windows; name other "
                                 "layers or set --image-size")
        self.widest_layer = max(o.shape[1] for o in outs)
        self.feature_dim = sum(o.shape[1] * FEATURE_GRID * FEATURE_GRID for o in outs)

    def _pooled(self, x: torch.Tensor, raw: bool = False) -> list[torch.Tensor]:
        got: dict[int, torch.Tensor] = {}

        def hook(i):
            def grab(module, inputs, output):
                got[i] = output if raw else pooled_features([output])
            return grab

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.layers)]
        try:
            self.model(x)
        finally:
            for h in handles:
                h.remove()
        return [got[i] for i in range(len(self.layers))]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x)

    def feature_vector(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self._pooled(x), dim=1)  # (B, feature_dim)


class UserVariant(Variant):
    """A user's class-conditional generator as Table 3's sampler sees it."""

    def __init__(self, spec: VariantSpec):
        self.spec = spec


def _scores_generators(protocol: str) -> bool:
    return TABLES.get(protocol).scorer is GENERATED_NN


def _section(protocol: str, profile: str | None, spec: dict) -> tuple[str, Section]:
    model = TABLES.get(protocol).config
    data: dict = {}
    if profile:  # without one, the paper's protocol: each section's defaults
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.is_file():
            raise ReproError(f"--profile {profile}: {path} not found (run from the repository "
                             "root, or leave --profile out for the paper's sizes)")
        data = dict((yaml.safe_load(path.read_text()) or {}).get(protocol) or {})
    data.update(spec)
    return protocol, validate(model, data, f"{profile or 'protocol'}.{protocol}")


def _report(table: str, metrics: dict[str, dict], path: Path, header: str) -> None:
    """Markdown: the user's rows beside the paper's published rows of `table`."""
    spec, published = load_tables()[table], load_published()
    cols = list(spec.columns)
    lines = [f"## {spec.title}: your model beside the paper's", "", header, "",
             "| Row | " + " | ".join(spec.columns[c] for c in cols) + " | Comparable |",
             "|---" * (len(cols) + 2) + "|"]
    rows: dict[str, dict[str, dict]] = {}
    for cid, c in metrics.items():
        _, _, row, col = cid.split("/")
        rows.setdefault(row, {})[col] = c
    for row, cells in rows.items():
        def fmt(c):
            if c is None:
                return "-"
            if c["value"] is None:
                return f"not run ({c.get('missing')})"
            return f"{c['value']:.2f}" + (f" ± {c['std']:.2f}" if c.get("std") else "")
        fields = sorted({d["field"] for c in cells.values() for d in c.get("protocol_diff", [])})
        lines.append(f"| **{row}** (measured) | " + " | ".join(fmt(cells.get(c)) for c in cols)
                     + f" | {'differs: ' + ', '.join(fields) if fields else 'protocol followed'} |")
    for row, label in spec.rows.items():
        vals = [published.get(f"{table}/{row}/{c}") for c in cols]
        if any(vals):
            lines.append(f"| {label} (paper) | " + " | ".join(
                "-" if v is None else f"{v.value:g}{v.unit if v.unit == '%' else ''}"
                + (f" ± {v.pm:g}" if v.pm else "") for v in vals) + " | |")
    lines.append("")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m repro.probe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", required=True, help="table1, table2, table3 or a YAML spec file")
    ap.add_argument("--dataset", help="a registered dataset (default: the protocol's)")
    ap.add_argument("--profile", help="take sizes from experiments/NAME.yaml (default: the "
                    "paper's protocol, repro/published/protocol.py)")
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--discriminator", help="pkg.module:factory returning the D nn.Module")
    who.add_argument("--generator", help="pkg.module:factory returning a conditional G(z, y)")
    ap.add_argument("--weights", type=Path, help="state dict file (torch.save(m.state_dict()))")
    ap.add_argument("--layers", default="", help="comma-separated module names (discriminator)")
    ap.add_argument("--name", default="yours", help="the row id of your model in the cells")
    ap.add_argument("--pixel-range", choices=("tanh", "sigmoid"), default="tanh",
                    help="the model's image range: [-1, 1] (the paper's) or [0, 1]")
    ap.add_argument("--image-size", type=_positive, default=32)
    ap.add_argument("--channels", type=_positive, default=None, help="default: 3 (D), 1 (G)")
    ap.add_argument("--z-dim", type=_positive, default=100)
    ap.add_argument("--z-dist", choices=("uniform", "normal"), default="uniform")
    ap.add_argument("--n-classes", type=_positive, default=10)
    ap.add_argument("--pretraining-data", default="unknown",
                    help="what the model was trained on (a registered dataset name, e.g. "
                         "imagenet32 for Table 1's protocol)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the raw-pixel row")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--out", type=Path, required=True)
    return ap.parse_args(argv)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spec: dict = {}
    protocol = args.protocol
    if protocol.endswith((".yaml", ".yml", ".json")):
        path = Path(protocol)
        spec = yaml.safe_load(path.read_text()) if path.is_file() else None
        if not isinstance(spec, dict) or "protocol" not in spec:
            raise ReproError(f"{path} must be a mapping with a `protocol:` key (table1|2|3)")
        protocol = spec.pop("protocol")
    get_protocol(protocol)  # a clear error for an unknown name
    if protocol == "figures":
        raise ReproError("the figures have no probe protocol; use table1, table2 or table3")
    if args.dataset:
        spec["dataset"] = args.dataset
    if _scores_generators(protocol) != bool(args.generator):
        raise ReproError(f"--protocol {protocol} scores a "
                         f"{'generator (--generator)' if _scores_generators(protocol) else 'discriminator (--discriminator)'}")
    section_name, cfg = _section(protocol, args.profile, spec)
    params = Params(profile=args.profile or "protocol", device=args.device,
                    data=DataParams(root=args.data_root, download=True))
    name = f"probe_{protocol}"
    stage = Stage(name, section_name, cfg, params, resolve_device(args.device))
    out = Path(args.out)
    metrics_path = out / "metrics" / f"{name}.json"
    prefix = f"probe/{protocol}"
    if _scores_generators(protocol):
        _probe_generator(args, protocol, stage, metrics_path, out, prefix)
    else:
        _probe_discriminator(args, protocol, stage, metrics_path, out, prefix)
    metrics = read_cells(metrics_path)
    sizes = f"profile `{args.profile}`" if args.profile else "the paper's"
    header = (f"Protocol `{protocol}` on `{cfg.dataset}` (sizes: {sizes}); "
              f"model `{args.discriminator or args.generator}` with weights `{args.weights}`. "
              "Measured cells are in "
              f"`{metrics_path}`; `Comparable` names the protocol fields that differ from the paper's.")
    _report(protocol, metrics, out / f"{name}.md", header)
    print(f"probe: {len(metrics)} cells -> {metrics_path}; report -> {out / f'{name}.md'}")


def _probe_discriminator(args, protocol: str, stage: Stage, metrics_path: Path, out: Path,
                         prefix: str) -> None:
    from repro.protocols.runner import run_table

    channels = args.channels or 3
    layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    probed = Probed(build(args.discriminator, args.weights), layers,
                    pixel_range=args.pixel_range, image_size=args.image_size, channels=channels,
                    what=f"{args.discriminator} features ({', '.join(layers)}, each max-pooled "
                         "to 4x4)", data_source=args.pretraining_data)
    srcs = [Source(args.name, args.discriminator, args.weights, module=probed)]
    if not args.no_baseline:
        srcs.append(Source("raw_pixels", RAW, None))
    if protocol == "table1" and channels != 3:
        raise ReproError("Table 1's protocol probes RGB models: --channels 3")
    # the harness's rows that are not probes (Table 2's KNN and supervised CNN) are not your
    # model's: see the pipeline for them
    run_table(TABLES.get(protocol), stage, None, metrics_path, out / "provenance",
              srcs=srcs, cell_prefix=prefix, input_shape=(args.image_size, channels),
              harness_rows=False)


def _probe_generator(args, protocol: str, stage: Stage, metrics_path: Path, out: Path,
                     prefix: str) -> None:
    from repro.protocols.runner import run_table

    G = build(args.generator, args.weights)
    variant = UserVariant(VariantSpec(
        name=args.name, image_size=28, channels=1, z_dim=args.z_dim, z_dist=args.z_dist,
        n_classes=args.n_classes, pixel_range=args.pixel_range, feature_dim=0,
        description=args.generator))
    try:
        with torch.no_grad():
            x = G(variant.sample_z(2), torch.arange(2) % max(args.n_classes, 1))
    except (TypeError, RuntimeError, ValueError) as err:
        raise ReproError(f"{args.generator}(): G(z, y) with z (2, {args.z_dim}) and int labels "
                         f"failed ({err}); Table 3 needs a class-conditional G of that shape "
                         "(set --z-dim, --n-classes)") from None
    if tuple(x.shape[1:]) != (1, 28, 28):
        raise ReproError(f"{args.generator}() makes images of shape {tuple(x.shape[1:])}; "
                         "Table 3's protocol compares 28x28 grey digits: (1, 28, 28)")
    facts = {"seed": 0, "data_source": args.pretraining_data, "deviations": [], "dry_run": False}
    # the real-data row stays: it is the reference a user's samples are read against
    run_table(TABLES.get(protocol), stage, None, metrics_path, out / "provenance",
              srcs=[Source(args.name, args.generator, args.weights, module=(variant, G, facts))],
              cell_prefix=prefix)


if __name__ == "__main__":
    main()
