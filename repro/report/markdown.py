"""Render a Report (and optionally a Comparison) as Markdown, tables via tabulate."""

from __future__ import annotations

import os
from pathlib import Path

from tabulate import tabulate

from repro.report.build import (
    NOT_COMPARABLE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, Report,
)
from repro.report.compare import Comparison
from repro.report.format import (
    Table, comparison_tables, figure_numbers, harness_table, libraries_table, main_table,
    provenance_table, summary_table,
)

RULES = (
    f"Verdicts: **{REPRODUCED}** when |measured - published| <= max(published ±, tolerance) "
    "(tolerances and their reasons: `repro/published/paper.yaml`; the measured std is shown "
    f"but does not widen the band); **{NOT_REPRODUCED}** otherwise; **{NOT_COMPARABLE}** when "
    "the run did not follow the paper's protocol (`comparable: false`: a protocol field of "
    "`repro/published/protocol.py` differs, named in the Protocol column, e.g. not real data "
    f"or a dry run) or reports another unit; **{NOT_RUN}** when no measured "
    "cell compares to the published one."
)


def _md(table: Table) -> str:
    headers, rows = table
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731  (a '|' would split the cell)
    return tabulate([[esc(c) for c in r] for r in rows], headers=[esc(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def _summary(report: Report) -> list[str]:
    c = report.summary()["all"]
    total = sum(c.values())
    lines = ["## Summary", "",
             f"Of {total} published cells: {c[REPRODUCED]} reproduced, {c[NOT_REPRODUCED]} not "
             f"reproduced, {c[NOT_COMPARABLE]} not comparable, {c[NOT_RUN]} not run.", "",
             _md(summary_table(report)), "", RULES, ""]
    return lines


def _tables(report: Report) -> list[str]:
    lines: list[str] = []
    for section in report.tables:
        lines += [f"## {section.spec.title}", "", f"*{section.spec.caption.strip()}*", ""]
        if not section.run:
            lines += [f"**Not run**: no metrics file in `{report.metrics_dir}` has a cell of "
                      "this table.", ""]
        lines += [_md(main_table(section)), ""]
        if section.notes:
            lines += ["Notes on the published numbers:", ""]
            lines += [f"- `{cell}`: {note.strip()}" for cell, note in section.notes] + [""]
        if section.harness_rows:
            lines += ["Harness cells (no published counterpart, or a second measurement of a "
                      "published cell):", "", _md(harness_table(section.harness_rows)), ""]
    if report.other_rows:
        lines += ["## Other harness cells", "", _md(harness_table(report.other_rows)), ""]
    return lines


def _rel(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), out_dir.resolve())).as_posix()


def _figures(report: Report, out_dir: Path) -> list[str]:
    lines = ["## Figures", "",
             f"Images from `{report.figures_dir}`; claims and harness cells from "
             "`repro/published/figures.yaml`. The paper's figures are qualitative: the harness "
             "numbers are ours, not the paper's.", ""]
    for entry in report.figures:
        spec = entry.spec
        lines += [f"### Figure {spec.number}: {spec.title}", "",
                  f"**Paper's claim:** {spec.claim.strip()}", ""]
        if spec.facts:
            facts = ", ".join(f"{k}={v}" for k, v in spec.facts.items())
            lines += [f"**Paper's protocol facts:** {facts}", ""]
        if entry.numbers:
            lines += [_md(figure_numbers(entry.numbers)), ""]
        if entry.images:
            lines += [f"![Figure {spec.number}: {spec.title} ({p.name})]({_rel(p, out_dir)})"
                      for p in entry.images] + [""]
        else:
            lines += [f"*Not run: no image for this figure in `{report.figures_dir}`.*", ""]
    if report.other_images:
        lines += ["### Other figures (not one of the paper's)", ""]
        lines += [f"![{p.stem}]({_rel(p, out_dir)})" for p in report.other_images] + [""]
    return lines


def _deviations(report: Report) -> list[str]:
    titles = {t.id: t.spec.title.split(":")[0] for t in report.tables}
    titles |= {"figures": "Figures", "other": "Other cells"}
    lines = ["## Deviations from the paper's protocol", ""]
    if not report.deviations and not any(p.deviations for p in report.provenance.values()):
        return lines + ["None recorded (nothing run, or every run followed the paper).", ""]
    for group, items in report.deviations.items():
        lines += [f"### {titles[group]}", ""] + [f"- {d}" for d in items] + [""]
    staged = [(p.stage or s, p.deviations) for s, p in report.provenance.items() if p.deviations]
    if staged:
        lines += ["### Per stage (profile sections, from provenance)", ""]
        lines += [f"- **{stage}**: {d}" for stage, items in staged for d in items] + [""]
    return lines


def _provenance(report: Report) -> list[str]:
    lines = ["## Provenance", ""]
    if not report.provenance:
        return lines + [f"**Not run**: no provenance files in `{report.provenance_dir}`.", ""]
    lines += [f"From `{report.provenance_dir}`.", "", _md(provenance_table(report.provenance)),
              ""]
    libs = libraries_table(report.provenance)
    if libs[1]:
        lines += ["Library versions:", "", _md(libs), ""]
    return lines


def comparison_markdown(comparison: Comparison) -> list[str]:
    lines = [f"## Comparison with {comparison.label}", ""]
    tables = comparison_tables(comparison)
    if not tables:
        return lines + ["Neither run has a measured cell.", ""]
    for intro, table in tables:
        lines += ([intro, ""] if intro else []) + [_md(table), ""]
    return lines


def render_markdown(report: Report, out_dir: Path, comparison: Comparison | None = None) -> str:
    lines = [
        "# DCGAN reproduction report", "",
        "Radford, Metz & Chintala (2015), *Unsupervised Representation Learning with Deep "
        f"Convolutional Generative Adversarial Networks*. Published numbers: {report.source} "
        "(`repro/published/paper.yaml`).", "",
        f"Metrics: `{report.metrics_dir}` ({report.n_metrics_files} files); provenance: "
        f"`{report.provenance_dir}`; figures: `{report.figures_dir}`. Regenerate with "
        "`python -m repro.report` (or `dvc repro report`).", "",
    ]
    if not report.metrics_found:
        lines += [f"> No metrics directory at `{report.metrics_dir}`: nothing has been run, "
                  "so every published cell is \"not run\".", ""]
    lines += _summary(report) + _tables(report) + _figures(report, out_dir)
    lines += _deviations(report) + _provenance(report)
    if comparison is not None:
        lines += comparison_markdown(comparison)
    return "\n".join(lines).rstrip() + "\n"
