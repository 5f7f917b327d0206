"""`python -m repro.report.readme`: the README's table of what the committed run shows, written
from the metrics files, so that the README holds no number typed by hand.

    python -m repro.report.readme            # rewrite the table in README.md
    python -m repro.report.readme --check    # exit 1, saying so, when README.md's table is stale

The table lies between BEGIN and END (HTML comments, invisible when rendered); the rest of
README.md is left as it is. One row per cell of the paper's own model (rows whose published id
starts with `dcgan`) with the report's verdict, and one row of the figures' claim checks: the
same derivations as `reports/report.md` (`repro.report.build`, `repro.report.claims`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repro.errors import ReproError, cli_errors
from repro.report.build import Report, build_report
from repro.report.claims import (
    CONTRADICTS, INCONCLUSIVE, NOT_COMPARABLE, NOT_RUN, SUPPORTS, check_figure, data_label,
)
from repro.report.format import fmt_measured, fmt_published
from repro.report.inputs import add_input_args
from repro.report.markdown import md_table
from repro.utils.io import atomic_path

COMMAND = "python -m repro.report.readme"
BEGIN = f"<!-- BEGIN table written by `{COMMAND}` from the metrics files: do not edit -->"
END = "<!-- END table -->"


def _profiles(report: Report) -> list[str]:
    return sorted({str(m.cell.protocol["profile"]) for m in report.measured.values()
                   if m.cell.protocol.get("profile")})


def _table_rows(report: Report) -> list[list[str]]:
    rows = []
    for section in report.tables:
        number = section.spec.title.split(":", 1)[0]
        for row in section.rows:
            pub = row.published
            if pub.informational or not pub.row.startswith("dcgan"):
                continue
            data = row.measured.cell.protocol.get("dataset") if row.measured else None
            rows.append([f"{number}, {pub.row_label}: {pub.column_label}",
                         f"`{data}`" if data else "-", fmt_published(row),
                         fmt_measured(row.measured), row.verdict])
    return rows


def _spans(numbers: list[int]) -> str:
    """[2, 3, 4, 7] -> '2-4, 7'."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def _figures_row(report: Report) -> list[str]:
    by_verdict: dict[str, list[int]] = {}
    data = []
    for entry in report.figures:
        by_verdict.setdefault(check_figure(entry, report.measured).verdict, []).append(
            entry.spec.number)
        label = data_label(entry)
        if label and label not in data:
            data.append(label)
    order = [SUPPORTS, CONTRADICTS, INCONCLUSIVE, NOT_COMPARABLE, NOT_RUN]
    order += sorted(set(by_verdict) - set(order))
    verdicts = "; ".join(f"{v} {_spans(by_verdict[v])}" for v in order if v in by_verdict)
    numbers = [e.spec.number for e in report.figures]
    return [f"Figs. {_spans(numbers)}: the paper's claims, a number each", ", ".join(data) or "-",
            "-", "-", verdicts]


def readme_table(metrics: Path, provenance: Path, figures: Path) -> str:
    """The block between BEGIN and END (markers included), from the metrics under `metrics`."""
    report = build_report(metrics, provenance, figures)
    if not report.measured:
        raise ReproError(f"no metrics in {metrics}: run the pipeline (`dvc repro`) first")
    headers = ["Result", "Data", "Published", "Measured ± s (n)", "Verdict"]
    rows = _table_rows(report) + [_figures_row(report)]
    profiles = ", ".join(f"`{p}`" for p in _profiles(report)) or "unknown"
    return "\n".join([
        BEGIN,
        md_table((headers, rows)),
        "",
        f"Profile of these cells: {profiles}; read from `{report.metrics_dir}`. Every cell, its "
        "deviations from the paper's protocol and the figures: `reports/report.md`.",
        END,
    ])


def replace_table(text: str, table: str, where: str) -> str:
    """`text` with its BEGIN ... END block replaced by `table`."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ReproError(f"{where} must hold the lines {BEGIN!r} and {END!r} once each, in that "
                         "order: put them where the table goes")
    return text[:start] + table + text[end + len(END):]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--readme", type=Path, default=Path("README.md"),
                    help="the file whose BEGIN ... END block is rewritten")
    add_input_args(ap)
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when the README's table differs from the metrics'")
    return ap.parse_args(argv)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.readme.is_file():
        raise ReproError(f"{args.readme} not found: run from the repository root or pass --readme")
    text = args.readme.read_text()
    new = replace_table(text, readme_table(args.metrics, args.provenance, args.figures),
                        str(args.readme))
    if args.check:
        if new != text:
            print(f"{args.readme}: its table differs from {args.metrics}; run `{COMMAND}` and "
                  "commit README.md", file=sys.stderr)
            sys.exit(1)
        print(f"{args.readme}: table up to date")
        return
    if new != text:
        with atomic_path(args.readme) as tmp:
            tmp.write_text(new)
    print(f"wrote {args.readme}" if new != text else f"{args.readme}: table up to date")


if __name__ == "__main__":
    main()
