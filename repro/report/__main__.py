"""`python -m repro.report`: the comparison report, reports/report.md and reports/report.pdf.

    python -m repro.report [--metrics results/metrics] [--provenance results/provenance]
                           [--figures results/figures] [--live results/live] [--out reports]
                           [--format md|pdf|both] [--bench results/bench.json]
                           [--bench-gpu results/bench_gpu.json]
                           [--curve results/table3_curve.json]
                           [--compare DIR_OR_GIT_REV]

Missing inputs give "not run" sections; a malformed metrics or provenance file is an error
naming the file. The report's own pictures (a forest plot per table, training losses) go to
<out>/report_files/. Every output is written atomically, and none holds a timestamp: the same
inputs give the same report.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repro.errors import cli_errors
from repro.report.build import Report, build_report
from repro.report.charts import forest_plot, training_plot
from repro.report.compare import compare_with
from repro.report.inputs import add_input_args
from repro.report.markdown import render_markdown
from repro.utils.io import atomic_path

ASSETS = "report_files"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m repro.report", description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_input_args(parser)
    parser.add_argument("--live", type=Path, default=Path("results/live"),
                        help="DVCLive folder (<model>/plots/metrics/train/loss_{d,g}.tsv) "
                             "whose losses the Training section draws")
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="where report.md, report.pdf and report_files/ are written")
    parser.add_argument("--format", choices=("md", "pdf", "both"), default="both",
                        help="which outputs to write")
    parser.add_argument("--bench", type=Path, default=Path("results/bench.json"),
                        help="benchmark figures (`python -m repro.bench`), shown when present")
    parser.add_argument("--bench-gpu", type=Path, default=Path("results/bench_gpu.json"),
                        help="the GPU check's figures (`tools/gpu_check.sh run`), shown when present")
    parser.add_argument("--curve", type=Path, default=Path("results/table3_curve.json"),
                        help="Table 3's learning curve (`python -m repro.stages.table3_curve`), "
                             "shown when present")
    parser.add_argument(
        "--compare", metavar="DIR_OR_REV", default=None,
        help="another run to compare with: a directory holding metrics/ (or a metrics dir), "
             "or a git revision whose results/metrics/*.json are read with `git show`",
    )
    return parser.parse_args(argv)


def draw_charts(report: Report, live: Path, out: Path) -> dict[str, Path]:
    """table id (and "training") -> the PNG drawn for it under <out>/report_files."""
    charts = {}
    for section in report.tables:
        path = out / ASSETS / f"forest_{section.id}.png"
        if forest_plot(section, path):
            charts[section.id] = path
    path = out / ASSETS / "training_losses.png"
    if training_plot(live, path):
        charts["training"] = path
    return charts


def _curve_section(path: Path | None, out: Path) -> str | None:
    """Table 3's learning-curve section (its plot drawn under <out>/report_files), or None."""
    from repro.report.curve import curve_markdown, curve_plot, read_curve

    curve = read_curve(path) if path is not None else None
    if curve is None:
        return None
    image = out / ASSETS / "table3_curve.png"
    curve_plot(curve, image)
    return curve_markdown(curve, image.relative_to(out).as_posix())


def run(args: argparse.Namespace) -> list[Path]:
    report = build_report(args.metrics, args.provenance, args.figures, args.live)
    comparison = compare_with(args.compare, args.metrics) if args.compare else None
    charts = draw_charts(report, args.live, args.out)
    bench = None
    if args.bench is not None and args.bench.is_file():
        from repro.bench.format import bench_markdown

        bench = bench_markdown(args.bench).strip()
    gpu = None
    if args.bench_gpu is not None and args.bench_gpu.is_file():
        from repro.bench.format import gpu_check_markdown

        gpu = gpu_check_markdown(args.bench_gpu).strip()
    curve = _curve_section(args.curve, args.out)
    written = []
    if args.format in ("md", "both"):
        path = args.out / "report.md"
        with atomic_path(path) as tmp:
            text = render_markdown(report, args.out, charts, comparison)
            if curve:
                text += "\n" + curve
            if bench:
                text += "\n## Benchmarks\n\n" + bench + "\n"
            if gpu:
                text += "\n## GPU check\n\n" + gpu + "\n"
            tmp.write_text(text)
        written.append(path)
    if args.format in ("pdf", "both"):
        from repro.report.pdf import render_pdf  # reportlab only when a PDF is asked for

        path = args.out / "report.pdf"
        render_pdf(report, path, charts, comparison)
        written.append(path)
    return written


@cli_errors
def main(argv: list[str] | None = None) -> None:
    for path in run(parse_args(argv)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
