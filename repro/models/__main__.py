"""`python -m repro.models [--json]`: list the registered model variants with their sizes."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from repro.errors import cli_errors
from repro.registry import MODELS


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def variant_rows() -> list[dict]:
    rows = []
    for name in MODELS.names():
        variant = MODELS.get(name)
        row = asdict(variant.spec)
        row["g_params"] = n_params(variant.build_generator())
        row["d_params"] = n_params(variant.build_discriminator())
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    cols = [("name", "name"), ("G params", "g_params"), ("D params", "d_params"),
            ("image", "image_size"), ("z", "z_dim"), ("features", "feature_dim"),
            ("description", "description")]
    cells = [[h for h, _ in cols]] + [
        [f"{r[k]:,}" if isinstance(r[k], int) and k.endswith("params") else
         (f"{r[k]}x{r[k]}" if k == "image_size" else str(r[k])) for _, k in cols] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) if 0 < i < len(cols) - 1 else c.ljust(w)
                       for i, (c, w) in enumerate(zip(line, widths))).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m repro.models", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    args = parser.parse_args(argv)
    rows = variant_rows()
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))


if __name__ == "__main__":
    main()
