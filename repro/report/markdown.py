"""Render a Report (and optionally a Comparison) as Markdown, tables via tabulate.

Page one answers "what reproduced?": counts, the inputs check, one forest plot per table, the
informational cells apart and each figure's claim verdict. Then the tables as the paper lays
them out, the figures with their claim checks, training losses, and an appendix with each
table's protocol (shared fields once, each row's differences). Nothing in it depends on when it
was built: the same inputs give the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from tabulate import tabulate

from repro.report.build import (
    HARNESS_ONLY, INFORMATIONAL, NOT_COMPARABLE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, CellVerdict,
    Report,
)
from repro.report.claims import (
    CONTRADICTS, INCONCLUSIVE, NOISE_K, SUPPORTS, check_figure, data_label, heading,
)
from repro.report.compare import Comparison
from repro.report.format import (
    Table, appendix, comparison_tables, figure_numbers, harness_table, informational_table,
    libraries_table, provenance_table, shipped_table, result_table, summary_table,
)

RULES = (
    f"Verdicts: **{REPRODUCED}** when |measured - published| <= max(published ±, tolerance) "
    "(tolerances and their reasons: each table's unit in `repro/tables/`; the measured std is shown "
    f"but does not widen the band); **{NOT_REPRODUCED}** otherwise; **{NOT_COMPARABLE}** when "
    "the run did not follow the paper's protocol (a protocol field of the table's unit "
    "differs, listed in the appendix; e.g. not real data, or a dry run) or reports another unit; "
    f"**{NOT_RUN}** when no measured cell compares to the published one. **{INFORMATIONAL}** "
    "cells are properties of a method (parameter counts, sizes), not results: never counted."
)


def md_table(table: Table) -> str:
    headers, rows = table
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731  (a '|' would split the cell)
    return tabulate([[esc(c) for c in r] for r in rows], headers=[esc(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def _rel(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), out_dir.resolve())).as_posix()


def headline(report: Report) -> str:
    c = report.summary()["all"]
    total = sum(c[v] for v in (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_RUN))
    return (f"Of {total} published result cells: {c[REPRODUCED]} reproduced, "
            f"{c[NOT_REPRODUCED]} not reproduced, {c[NOT_COMPARABLE]} not comparable, "
            f"{c[NOT_RUN]} not run. {c[INFORMATIONAL]} informational cells (parameter counts, "
            "sizes) are listed apart and not counted.")


def inputs_check(report: Report) -> list[str]:
    """Lines saying whether the metrics belong with each other and with their provenance."""
    if not report.mismatches:
        if not report.n_metrics_files:
            return []
        return ["Inputs belong together: every metrics file carries the git revision and "
                "params hash of its stage's provenance, all from one revision."]
    return ["**Inputs that do not belong together** (numbers may mix runs):"] + [
        f"- `{stem}`: {problem}" for stem, problem in report.mismatches]


FIGURE_RULES = (
    f"Claim checks: **{SUPPORTS}** / **{CONTRADICTS}** when the number is on the claim's / the "
    "other side of its threshold by more than the noise; the margin is its signed distance from "
    "the threshold (+ on the claim's side) ± one standard error over the draws the figure makes "
    f"(samples, walks, equations, random inits or maps, judge seeds, test digits); "
    f"**{INCONCLUSIVE}** when the margin is "
    f"within {NOISE_K:g} standard errors of zero. Each check is run on controls (section "
    "Controls)."
)


def margin_suffix(check) -> str:
    """' (margin +x ± se)' after a verdict, or nothing when the check has no margin."""
    return f" ({check.margin_text})" if check.margin is not None else ""


def figure_verdicts(report: Report) -> Table:
    rows = []
    for entry in report.figures:
        check = check_figure(entry, report.measured)
        rows.append([f"Fig. {entry.spec.number}", data_label(entry) or "-", check.verdict,
                     check.margin_text.removeprefix("margin ")])
    return ["Figure", "Data used", "Claim check", "Margin ± se"], rows


def controls_tables() -> tuple[Table, Table]:
    """The Controls section's tables: each claim check on its positive and negative control,
    and the table verdict on constructed cells (repro.report.controls)."""
    from repro.report.controls import run_controls, table_controls

    rows = [[c.check, c.positive, f"{c.pos.verdict} ({c.pos.margin_text})", c.negative,
             f"{c.neg.verdict} ({c.neg.margin_text})", "pass" if c.passed else "**FAIL**"]
            for c in run_controls()]
    checks = (["Check", "Positive control (claim holds)", "gave", "Negative control (claim fails)",
               "gave", ""], rows)
    tables = (["Table cell (Table 3 DCGAN @50K, band: max(±, tolerance))", "verdict", ""],
              [[t.case, t.verdict, "pass" if t.passed else "**FAIL**"] for t in table_controls()])
    return checks, tables


CONTROLS_INTRO = (
    "Every claim check and the table verdict run on tiny constructed models "
    "(`repro/report/controls.py`, tested by `tests/test_controls.py`): a check must say "
    f"{SUPPORTS} where the claim holds by construction and {CONTRADICTS} where it fails.")


def _controls() -> list[str]:
    checks, tables = controls_tables()
    return ["## Controls", "", CONTROLS_INTRO, "", md_table(checks), "", md_table(tables), ""]


def _page_one(report: Report, charts: dict[str, Path], out_dir: Path) -> list[str]:
    lines = ["## What reproduced", "", headline(report), "", md_table(summary_table(report)), ""]
    check = inputs_check(report)
    lines += check + ([""] if check else [])
    for section in report.tables:
        name = section.spec.title.split(":")[0]
        if section.id in charts:
            lines += [f"![{name}: published vs measured, by verdict]"
                      f"({_rel(charts[section.id], out_dir)})", ""]
        else:
            lines += [f"*{name}: no measured result cell to plot.*", ""]
    info = informational_table(report)
    if info[1]:
        lines += ["Informational cells (not results):", "", md_table(info), ""]
    lines += ["Figures, each claim against its harness number:", "",
              md_table(figure_verdicts(report)), "", RULES, "", FIGURE_RULES, ""]
    return lines


def _tables(report: Report) -> list[str]:
    lines: list[str] = []
    for section in report.tables:
        caption = section.spec.caption.strip()  # a harness table may have none
        lines += [f"## {section.spec.title}", ""] + ([f"*{caption}*", ""] if caption else [])
        if not section.run:
            lines += [f"**Not run**: no metrics file in `{report.metrics_dir}` has a cell of "
                      "this table.", ""]
        table, notes = result_table(section)
        lines += [md_table(table), ""] + [f"{n}  " for n in notes] + ([""] if notes else [])
        if section.harness_rows:
            table, notes = harness_table(section.harness_rows)
            lines += ["Harness cells (no published counterpart, or a second measurement):", "",
                      md_table(table), ""] + [f"{n}  " for n in notes] + ([""] if notes else [])
        if section.notes:
            lines += ["Notes on the published numbers:", ""]
            lines += [f"- `{cell}`: {note.strip()}" for cell, note in section.notes] + [""]
    if report.other_rows:
        table, notes = harness_table(report.other_rows)
        lines += ["## Other harness cells", "", md_table(table), ""] + notes + [""]
    return lines


def _figures(report: Report, out_dir: Path) -> list[str]:
    lines = ["## Figures", "",
             f"Images from `{report.figures_dir}`; claims from `repro/published/figures.yaml`, "
             "checks from `repro/report/claims.py`. Each heading names the data the figure's "
             "numbers were measured on.", ""]
    for entry in report.figures:
        check = check_figure(entry, report.measured)
        lines += [f"### {heading(entry)}", "",
                  f"- **Paper's claim:** {entry.spec.claim.strip()}",
                  f"- **Harness's number:** {check.number}",
                  f"- **Supports the claim if:** {check.threshold}",
                  f"- **Verdict:** {check.verdict}{margin_suffix(check)}", ""]
        if entry.numbers:
            lines += [md_table(figure_numbers(entry.numbers)), ""]
        if entry.images:
            lines += [f"![Figure {entry.spec.number} ({p.name})]({_rel(p, out_dir)})"
                      for p in entry.images] + [""]
    if report.other_images:
        lines += ["### Other figures (not one of the paper's)", ""]
        lines += [f"![{p.stem}]({_rel(p, out_dir)})" for p in report.other_images] + [""]
    return lines


def _training(report: Report, charts: dict[str, Path], out_dir: Path) -> list[str]:
    if "training" not in charts:
        return ["## Training", "", f"*No DVCLive losses found in `{report.live_dir or '-'}`.*",
                ""]
    return ["## Training", "",
            f"Discriminator and generator loss per step, from DVCLive (`{report.live_dir}`); "
            "`dvc plots show` renders the same series.", "",
            f"![D and G losses per model]({_rel(charts['training'], out_dir)})", ""]


def appendix_sections(report: Report) -> list[tuple[str, list[str], list[str],
                                                    list[tuple[str, list[str]]]]]:
    """(title, shared protocol facts, shared deviations, rows) per table, then the figures."""
    out = []
    for section in report.tables:
        if section.run:
            out.append((section.spec.title.split(":")[0],
                        *appendix(section.rows + section.harness_rows)))
    # figure cells and cells of no table: harness numbers, one group
    rows = [CellVerdict(None, m, HARNESS_ONLY, harness=True) for m in report.measured.values()
            if m.id.startswith("fig")] + list(report.other_rows)
    if rows:
        out.append(("Figures and other harness cells", *appendix(rows)))
    return out


def _appendix(report: Report) -> list[str]:
    lines = ["## Appendix: protocol per table", "",
             "Fields every row of a table shares are listed once; under each row, only how it "
             "differs: from the paper's protocol (`protocol_diff`), its own facts, its own "
             "deviations.", ""]
    for title, shared, devs, rows in appendix_sections(report):
        lines += [f"### {title}", ""]
        if shared:
            lines += ["Shared protocol: " + "; ".join(shared), ""]
        if devs:
            lines += ["Shared deviations:", ""] + [f"- {d}" for d in devs] + [""]
        for label, items in rows:
            lines += [f"**{label}**", ""] + [f"- {i}" for i in items] + [""]
    staged = [(p.stage or s, p.deviations) for s, p in report.provenance.items() if p.deviations]
    if staged:
        lines += ["### Per stage (profile sections, from provenance)", ""]
        lines += [f"- **{stage}**: {d}" for stage, items in staged for d in items] + [""]
    return lines


def _provenance(report: Report) -> list[str]:
    lines = ["## Provenance", ""]
    if not report.provenance:
        return lines + [f"**Not run**: no provenance files in `{report.provenance_dir}`.", ""]
    lines += [f"From `{report.provenance_dir}` (start and finish times are kept there).", "",
              md_table(provenance_table(report.provenance)), ""]
    shipped = shipped_table(report.provenance, {k: m.cell for k, m in report.measured.items()})
    if shipped[1]:
        lines += ["Models installed from shipped checkpoints (trained by the longer profile, "
                  "md5-verified; `results/shipped/`), not trained in this run; every cell "
                  "computed from one says so among its deviations:", "", md_table(shipped), ""]
    libs = libraries_table(report.provenance)
    if libs[1]:
        lines += ["Library versions:", "", md_table(libs), ""]
    return lines


def comparison_markdown(comparison: Comparison) -> list[str]:
    lines = [f"## Comparison with {comparison.label}", ""]
    tables = comparison_tables(comparison)
    if not tables:
        return lines + ["Neither run has a measured cell.", ""]
    for intro, table in tables:
        lines += ([intro, ""] if intro else []) + [md_table(table), ""]
    return lines


def render_markdown(report: Report, out_dir: Path, charts: dict[str, Path],
                    comparison: Comparison | None = None) -> str:
    """The report; `charts` maps a table id (and "training") to its PNG (repro.report.charts)."""
    lines = [
        "# DCGAN reproduction report", "",
        "Radford, Metz & Chintala (2015), *Unsupervised Representation Learning with Deep "
        f"Convolutional Generative Adversarial Networks*. Published numbers: {report.source} "
        "(each table's unit in `repro/tables/`).", "",
        f"Metrics: `{report.metrics_dir}` ({report.n_metrics_files} files); provenance: "
        f"`{report.provenance_dir}`; figures: `{report.figures_dir}`. Regenerate with "
        "`python -m repro.report` (or `dvc repro report`).", "",
    ]
    if not report.metrics_found:
        lines += [f"> No metrics directory at `{report.metrics_dir}`: nothing has been run, "
                  "so every published cell is \"not run\".", ""]
    lines += _page_one(report, charts, out_dir) + _tables(report) + _figures(report, out_dir)
    lines += _controls()
    lines += _training(report, charts, out_dir) + _appendix(report) + _provenance(report)
    if comparison is not None:
        lines += comparison_markdown(comparison)
    return "\n".join(lines).rstrip() + "\n"
