"""`python -m repro.report`: the comparison report, reports/report.md and reports/report.pdf.

    python -m repro.report [--metrics results/metrics] [--provenance results/provenance]
                           [--figures results/figures] [--out reports] [--format md|pdf|both]
                           [--compare DIR_OR_GIT_REV]

Missing inputs give "not run" sections; a malformed metrics or provenance file is an error
naming the file. Both outputs are written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repro.errors import cli_errors
from repro.report.build import build_report
from repro.report.compare import compare_with
from repro.report.markdown import render_markdown
from repro.utils.io import atomic_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m repro.report", description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", type=Path, default=Path("results/metrics"))
    parser.add_argument("--provenance", type=Path, default=Path("results/provenance"))
    parser.add_argument("--figures", type=Path, default=Path("results/figures"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--format", choices=("md", "pdf", "both"), default="both")
    parser.add_argument("--bench", type=Path, default=Path("results/bench.json"),
                        help="benchmark figures (`python -m repro.bench`), shown when present")
    parser.add_argument(
        "--compare", metavar="DIR_OR_REV",
        help="another run to compare with: a directory holding metrics/ (or a metrics dir), "
             "or a git revision whose results/metrics/*.json are read with `git show`",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Path]:
    report = build_report(args.metrics, args.provenance, args.figures)
    comparison = compare_with(args.compare, args.metrics) if args.compare else None
    written = []
    if args.format in ("md", "both"):
        path = args.out / "report.md"
        with atomic_path(path) as tmp:
            text = render_markdown(report, args.out, comparison)
            if args.bench is not None and args.bench.is_file():
                from repro.bench.format import bench_markdown

                text += "\n## Benchmarks\n\n" + bench_markdown(args.bench).strip() + "\n"
            tmp.write_text(text)
        written.append(path)
    if args.format in ("pdf", "both"):
        from repro.report.pdf import render_pdf  # matplotlib only when a PDF is asked for

        path = args.out / "report.pdf"
        render_pdf(report, path, comparison)
        written.append(path)
    return written


@cli_errors
def main(argv: list[str] | None = None) -> None:
    for path in run(parse_args(argv)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
