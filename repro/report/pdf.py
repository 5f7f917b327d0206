"""Render a Report as PDF with matplotlib only (no LaTeX, no system packages).

Text pages are laid out as monospaced lines, so widths are exact: every table is rendered with
tabulate, its widest columns wrapped until it fits the page width. Then one page per figure
image, with the paper's claim and the harness numbers as caption.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from repro.report.build import Report
from repro.report.compare import Comparison
from repro.report.format import (
    Table, comparison_tables, figure_numbers, fmt_measured, harness_table, libraries_table, main_table, provenance_table,
    summary_table,
)
from repro.report.markdown import RULES
from repro.utils.io import atomic_path

PAGE_W, PAGE_H = 11.69, 8.27  # A4 landscape, inches
MARGIN = 0.5  # inches
FONT = 7.0  # pt, monospaced body text
LINE = FONT * 1.3 / 72  # inches per line
CHAR_W = 0.61 * FONT / 72  # inches per monospaced character (DejaVu Sans Mono advance)
WIDTH_CHARS = int((PAGE_W - 2 * MARGIN) / CHAR_W)
LINES_PER_PAGE = int((PAGE_H - 2 * MARGIN) / LINE)
HEADING_LINES = {"title": 3, "heading": 2.2}


@dataclass
class Block:
    kind: str  # title | heading | text
    text: str
    header: int = 0  # table header lines, repeated when the block continues on a new page
    breaks: tuple[int, ...] | None = None  # body lines where a page may break (None: any)


def _wrap_table(table: Table, width: int) -> tuple[list[str], list[list[str]]]:
    """Cells wrapped so that the table is no wider than `width`, widest columns first."""
    headers, rows = table
    natural = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    budget = width - 2 * (len(natural) - 1)  # "simple" format: two spaces between columns
    cap = max(natural)
    while sum(min(n, cap) for n in natural) > budget and cap > 6:
        cap -= 1
    widths = [min(n, cap) for n in natural]
    # wrapped here, not with tabulate's maxcolwidths: that re-parses "4,800" as a number and fails
    wrap = lambda row: ["\n".join(textwrap.wrap(str(x), w, break_on_hyphens=False)) or ""  # noqa: E731
                        for x, w in zip(row, widths)]
    return wrap(headers), [wrap(r) for r in rows]


def _fit(table: Table, width: int = WIDTH_CHARS) -> str:
    """The table as monospaced text no wider than `width`."""
    if not table[1]:
        return ""
    headers, rows = _wrap_table(table, width)
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _para(text: str) -> Block:
    text = text.replace("`", "").replace("**", "")
    return Block("text", "\n".join(textwrap.wrap(text, WIDTH_CHARS)))


def _figures_table(report: Report) -> Table:
    rows = []
    for entry in report.figures:
        numbers = "; ".join(f"{cid}={fmt_measured(m) if m else 'not run'}"
                            for cid, m in entry.numbers)
        images = ", ".join(p.name for p in entry.images) or "none"
        rows.append([f"Fig {entry.spec.number}", entry.spec.title, images, numbers or "-"])
    return ["Figure", "Title", "Images", "Harness numbers"], rows


def _blocks(report: Report, comparison: Comparison | None) -> list[Block]:
    counts = report.summary()["all"]
    blocks = [
        Block("title", "DCGAN reproduction report"),
        _para(f"Radford, Metz & Chintala (2015). Published numbers: {report.source}. "
              f"Metrics: {report.metrics_dir} ({report.n_metrics_files} files); provenance: "
              f"{report.provenance_dir}; figures: {report.figures_dir}."),
        Block("heading", "Summary"),
        _para(f"Of {sum(counts.values())} published cells: {counts['reproduced']} reproduced, "
              f"{counts['not reproduced']} not reproduced, {counts['not comparable']} not "
              f"comparable, {counts['not run']} not run."),
        _table_block(summary_table(report)),
        _para(RULES),
    ]
    for section in report.tables:
        blocks += [Block("heading", section.spec.title), _para(section.spec.caption.strip())]
        if not section.run:
            blocks.append(_para("Not run: no metrics file has a cell of this table."))
        blocks.append(_table_block(main_table(section)))
        blocks += [_para(f"Note {cell}: {note.strip()}") for cell, note in section.notes]
        if section.harness_rows:
            blocks.append(_table_block(harness_table(section.harness_rows)))
    if report.other_rows:
        blocks += [Block("heading", "Other harness cells"),
                   _table_block(harness_table(report.other_rows))]
    blocks += [Block("heading", "Figures"),
               _para("The paper's figures are qualitative; images found follow as one page "
                     "each, with the paper's claim. Harness numbers are ours, not the paper's."),
               _table_block(_figures_table(report))]
    blocks.append(Block("heading", "Deviations from the paper's protocol"))
    titles = {t.id: t.spec.title.split(":")[0] for t in report.tables}
    for group, items in report.deviations.items():
        blocks += [_para(f"{titles.get(group, group.capitalize())}: {d}") for d in items]
    for stage, prov in report.provenance.items():
        blocks += [_para(f"Stage {prov.stage or stage} (profile): {d}") for d in prov.deviations]
    if len(blocks) and blocks[-1].kind == "heading":
        blocks.append(_para("None recorded (nothing run, or every run followed the paper)."))
    blocks.append(Block("heading", "Provenance"))
    if report.provenance:
        blocks.append(_table_block(provenance_table(report.provenance)))
        libs = libraries_table(report.provenance)
        if libs[1]:
            blocks.append(_table_block(libs))
    else:
        blocks.append(_para(f"Not run: no provenance files in {report.provenance_dir}."))
    if comparison is not None:
        blocks.append(Block("heading", f"Comparison with {comparison.label}"))
        for intro, table in comparison_tables(comparison):
            blocks += ([_para(intro)] if intro else []) + [_table_block(table)]
    return blocks


def _table_block(table: Table) -> Block:
    """A table whose header is repeated, and whose rows stay whole, across page breaks."""
    if not table[1]:
        return Block("text", "")
    headers, rows = _wrap_table(table, WIDTH_CHARS)
    text = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    header = max(h.count("\n") for h in headers) + 2  # header lines and the dashes
    starts, line = [], 0
    for row in rows:
        starts.append(line)
        line += max(c.count("\n") for c in row) + 1
    return Block("text", text, header=header, breaks=tuple(starts))


def _trailing_heading(page: list[Block]) -> list[Block]:
    """Remove and return a heading and up to two paragraphs after it at the end of `page`."""
    for back in (1, 2, 3):
        if back < len(page) and page[-back].kind in HEADING_LINES:
            if all(b.kind == "text" and not b.header for b in page[len(page) - back + 1:]):
                carried = page[-back:]
                del page[-back:]
                return carried
    return []


def _pages(blocks: list[Block]) -> list[list[Block]]:
    """Split blocks over pages: a block that fits on a page is never split; a longer one is
    split by lines, repeating a table's header on each continued page."""
    pages: list[list[Block]] = [[]]
    used = 0.0

    def new_page() -> None:
        nonlocal used
        pages.append([])
        used = 0.0

    for block in blocks:
        if block.kind in HEADING_LINES:
            if used + HEADING_LINES[block.kind] + 4 > LINES_PER_PAGE:  # keep with its text
                new_page()
            pages[-1].append(block)
            used += HEADING_LINES[block.kind]
            continue
        lines = block.text.split("\n")
        if used + len(lines) > LINES_PER_PAGE:
            # move the whole block to a new page, with the heading (and caption) above it,
            # when that makes it fit; otherwise it is split below
            carried = _trailing_heading(pages[-1])
            size = sum(HEADING_LINES.get(b.kind, b.text.count("\n") + 2) for b in carried)
            if size + len(lines) <= LINES_PER_PAGE:
                new_page()
                used = size
            pages[-1] += carried
        head, body = lines[:block.header], lines[block.header:]
        breaks = sorted(set(block.breaks or range(len(body))) | {len(body)})
        pos = 0
        while True:
            room = int(LINES_PER_PAGE - used) - len(head)
            nxt = next((b for b in breaks if b > pos), len(body))
            if room < min(nxt - pos, 3) and used > 0:
                new_page()
                room = LINES_PER_PAGE - len(head)
            # end at the last row start that fits; a row taller than a page is cut
            end = max((b for b in breaks if pos < b <= pos + room), default=pos + max(room, 1))
            pages[-1].append(Block("text", "\n".join(head + body[pos:end])))
            used += len(head) + end - pos + 1  # one blank line after every block
            pos = end
            if pos >= len(body):
                break
    return [p for p in pages if p]


def _text_page(pdf, blocks: list[Block], number: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(PAGE_W, PAGE_H))
    y = PAGE_H - MARGIN
    for block in blocks:
        if block.kind in HEADING_LINES:
            size = 15 if block.kind == "title" else 10.5
            fig.text(MARGIN / PAGE_W, (y - 0.3 * HEADING_LINES[block.kind] * LINE) / PAGE_H,
                     block.text, fontsize=size, fontweight="bold", va="top", ha="left")
            y -= HEADING_LINES[block.kind] * LINE
        else:
            n = block.text.count("\n") + 1
            fig.text(MARGIN / PAGE_W, y / PAGE_H, block.text, family="monospace",
                     fontsize=FONT, va="top", ha="left", linespacing=1.3)
            y -= (n + 1) * LINE
    fig.text(0.5, 0.3 / PAGE_H, str(number), fontsize=7, ha="center", color="gray")
    pdf.savefig(fig)


def _figure_page(pdf, title: str, image: Path, caption: str, number: int) -> None:
    import matplotlib.image as mpimg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(PAGE_W, PAGE_H))
    fig.text(MARGIN / PAGE_W, 1 - MARGIN / PAGE_H, title, fontsize=12, fontweight="bold",
             va="top")
    ax = fig.add_axes((MARGIN / PAGE_W, 0.30, 1 - 2 * MARGIN / PAGE_W, 0.58))
    ax.set_axis_off()
    try:
        ax.imshow(mpimg.imread(image), cmap="gray", interpolation="nearest")
    except (OSError, ValueError, SyntaxError) as err:  # a broken PNG must not stop the report
        ax.text(0.5, 0.5, f"cannot read {image.name}: {err}", ha="center", transform=ax.transAxes)
    fig.text(MARGIN / PAGE_W, 0.27, caption, family="monospace", fontsize=7.5, va="top",
             linespacing=1.3)
    fig.text(0.5, 0.3 / PAGE_H, str(number), fontsize=7, ha="center", color="gray")
    pdf.savefig(fig)


def _caption(entry, image: Path) -> str:
    width = int((PAGE_W - 2 * MARGIN) / (0.61 * 7.5 / 72))
    parts = textwrap.wrap(f"{image.name}. Paper's claim: {entry.spec.claim.strip()}", width)
    if entry.numbers:
        numbers = _fit(figure_numbers(entry.numbers), width).split("\n")
        if len(numbers) > 14:  # the caption area holds ~20 lines
            numbers = numbers[:13] + [f"... {len(numbers) - 13} more lines in report.md"]
        parts += [""] + numbers
    return "\n".join(parts)


def render_pdf(report: Report, path: Path, comparison: Comparison | None = None) -> None:
    """Write the report to `path` atomically."""
    from matplotlib.backends.backend_pdf import PdfPages

    pages = _pages(_blocks(report, comparison))
    with atomic_path(path) as tmp:
        # no creation date: the same inputs give the same file
        with PdfPages(tmp, metadata={"Title": "DCGAN reproduction report",
                                     "CreationDate": None}) as pdf:
            for i, page in enumerate(pages, 1):
                _text_page(pdf, page, i)
            n = len(pages)
            for entry in report.figures:
                for image in entry.images:
                    n += 1
                    _figure_page(pdf, f"Figure {entry.spec.number}: {entry.spec.title}",
                                 image, _caption(entry, image), n)
            for image in report.other_images:
                n += 1
                _figure_page(pdf, f"Harness figure: {image.stem}", image, image.name, n)
