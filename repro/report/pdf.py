"""Render a Report as a typeset PDF (reportlab): proportional fonts, real tables, the charts.

The same content as the Markdown, in the same order: page one (counts, inputs check, forest
plots, informational cells, figure verdicts), the tables, the figures with their claim checks
(images scaled down), training losses, the protocol appendix and provenance. DejaVu Sans, which
matplotlib ships, is embedded so that every character (±, →) prints. `invariant` keeps dates
and ids out of the file: the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table as RLTable,
    TableStyle,
)

from repro.report.build import Report
from repro.report.claims import check_figure, heading
from repro.report.compare import Comparison
from repro.report.format import (
    Table, comparison_tables, harness_table, informational_table,
    libraries_table, provenance_table, result_table, shipped_table, summary_table,
)
from repro.report.markdown import (
    CONTROLS_INTRO, FIGURE_RULES, RULES, appendix_sections, controls_tables, figure_verdicts,
    headline, inputs_check, margin_suffix,
)
from repro.utils.io import atomic_path

WIDTH = A4[0] - 3 * cm  # text width
IMAGE_PX = 700  # figure images are scaled down to this width before embedding


def _fonts() -> tuple[str, str]:
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in (("DejaVu", "DejaVuSans.ttf"), ("DejaVu-Bold", "DejaVuSans-Bold.ttf")):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(ttf / file)))
    return "DejaVu", "DejaVu-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    body, bold = _fonts()
    base = ParagraphStyle("body", fontName=body, fontSize=8.5, leading=11, spaceAfter=4)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=8.6, spaceAfter=2),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7, leading=8.4, spaceAfter=0),
        "head": ParagraphStyle("head", parent=base, fontName=bold, fontSize=7, leading=8.4,
                               spaceAfter=0),
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=16, leading=20,
                                spaceAfter=8),
        "h1": ParagraphStyle("h1", parent=base, fontName=bold, fontSize=12, leading=15,
                             spaceBefore=8, spaceAfter=5),
        "h2": ParagraphStyle("h2", parent=base, fontName=bold, fontSize=9.5, leading=12,
                             spaceBefore=6, spaceAfter=3),
    }


S = _styles()


def _p(text: str, style: str = "body") -> Paragraph:
    """Markdown-ish text (`code`, **bold**) as a paragraph."""
    text = escape(text)
    parts = text.split("**")
    text = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    return Paragraph(text.replace("`", ""), S[style])


def _table(table: Table, widths: list[float] | None = None) -> RLTable | Spacer:
    headers, rows = table
    if not rows:
        return Spacer(0, 0)
    data = [[Paragraph(escape(h), S["head"]) for h in headers]]
    data += [[Paragraph(escape(str(c)), S["cell"]) for c in r] for r in rows]
    if widths is None:  # proportional to the longest text of each column, within limits
        longest = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
        longest = [min(max(n, 6), 60) for n in longest]
        widths = [WIDTH * n / sum(longest) for n in longest]
    t = RLTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    t.setStyle(TableStyle([
        ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f3f3")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return t


def _image(path: Path, width: float, max_height: float = 9 * cm) -> Image | Paragraph:
    try:
        with PILImage.open(path) as img:
            img = img.convert("RGB")
            if img.width > IMAGE_PX:
                img = img.resize((IMAGE_PX, round(img.height * IMAGE_PX / img.width)))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=85)  # sample grids are noise to deflate
            w, h = img.size
    except (OSError, ValueError) as err:  # a broken PNG must not stop the report
        return _p(f"cannot read {path.name}: {err}", "small")
    scale = min(width / w, max_height / h)
    buf.seek(0)
    return Image(buf, width=w * scale, height=h * scale)


def _notes(lines: list[str]) -> list:
    return [_p(n, "small") for n in lines]


def _page_one(report: Report, charts: dict[str, Path]) -> list:
    story = [_p("What reproduced", "h1"), _p(headline(report)), _table(summary_table(report))]
    story += [Spacer(0, 4)] + [_p(line.lstrip("- "), "small") for line in inputs_check(report)]
    for section in report.tables:
        if section.id in charts:
            story.append(_image(charts[section.id], WIDTH, 5.5 * cm))
    info = informational_table(report)
    if info[1]:
        story += [_p("Informational cells (not results)", "h2"), _table(info)]
    story += [_p("Figures: each claim against its harness number", "h2"),
              _table(figure_verdicts(report)), Spacer(0, 4), _p(RULES, "small"),
              _p(FIGURE_RULES, "small")]
    return story


def _controls() -> list:
    """The Markdown's Controls tables, short: each check's two verdicts (the controls
    themselves are described in report.md)."""
    checks, tables = controls_tables()
    short = (["Check", "positive control gave", "negative control gave", ""],
             [[r[0], r[2].split(" (")[0], r[4].split(" (")[0], r[5]] for r in checks[1]])
    passed = sum(r[2] == "pass" for r in tables[1])
    return [_p("Controls", "h2"), _p(CONTROLS_INTRO, "small"), _table(short),
            _p(f"Table verdict on constructed Table 3 cells (at, inside and outside the band; a "
               f"protocol field changed): {passed} of {len(tables[1])} as expected.", "small")]


def _tables(report: Report) -> list:
    story = [PageBreak()]
    widths = [WIDTH * f for f in (0.38, 0.12, 0.18, 0.15, 0.17)]
    for section in report.tables:
        story += [_p(section.spec.title, "h1"), _p(section.spec.caption.strip(), "small")]
        table, notes = result_table(section)
        story += [_table(table, widths)] + _notes(notes)
        if section.harness_rows:
            table, notes = harness_table(section.harness_rows)
            story += [_p("Harness cells", "h2"), _table(table)] + _notes(notes)
        story += [_p(f"{cell}: {note.strip()}", "small") for cell, note in section.notes]
    return story


def _figures(report: Report) -> list:
    story = [PageBreak(), _p("Figures", "h1")]
    for entry in report.figures:
        check = check_figure(entry, report.measured)
        block = [_p(heading(entry), "h2"),
                 _p(f"**Paper's claim:** {entry.spec.claim.strip()}", "small"),
                 _p(f"**Harness's number:** {check.number}", "small"),
                 _p(f"**Supports the claim if:** {check.threshold}. **Verdict: {check.verdict}**"
                    f"{margin_suffix(check)}", "small")]
        images = [_image(p, WIDTH / 2 - 0.2 * cm, 5.5 * cm) for p in entry.images[:2]]
        if images:
            block.append(RLTable([images], hAlign="LEFT"))
        if len(entry.images) > 2:
            block.append(_p(f"{len(entry.images) - 2} more images in report.md", "small"))
        story.append(KeepTogether(block))
    return story


def _later(report: Report, charts: dict[str, Path], comparison: Comparison | None) -> list:
    story = []
    if "training" in charts:
        story += [_p("Training", "h1"),
                  _p(f"D and G loss per step, from DVCLive ({report.live_dir}).", "small"),
                  _image(charts["training"], WIDTH, 10 * cm)]
    story += [PageBreak(), _p("Appendix: protocol per table", "h1")]
    for title, shared, devs, rows in appendix_sections(report):
        story.append(_p(title, "h2"))
        if shared:
            story.append(_p("Shared protocol: " + "; ".join(shared), "small"))
        story += [_p("Shared deviation: " + d, "small") for d in devs]
        for label, items in rows:
            story.append(_p(f"**{label}**: " + " | ".join(items), "small"))
    story.append(_p("Provenance", "h1"))
    if report.provenance:
        story += [_table(provenance_table(report.provenance)), Spacer(0, 6)]
        shipped = shipped_table(report.provenance, {k: m.cell for k, m in report.measured.items()})
        if shipped[1]:
            story += [_p("Models installed from shipped checkpoints (trained by the longer "
                         "profile, md5-verified), not trained in this run:", "small"),
                      _table(shipped), Spacer(0, 6)]
        story.append(_table(libraries_table(report.provenance)))
    else:
        story.append(_p(f"Not run: no provenance files in {report.provenance_dir}."))
    if comparison is not None:
        story.append(_p(f"Comparison with {comparison.label}", "h1"))
        for intro, table in comparison_tables(comparison):
            story += ([_p(intro)] if intro else []) + [_table(table)]
    return story


def _number(canvas, doc) -> None:
    canvas.setFont("DejaVu", 7)
    canvas.drawCentredString(A4[0] / 2, 1 * cm, str(doc.page))


def render_pdf(report: Report, path: Path, charts: dict[str, Path],
               comparison: Comparison | None = None) -> None:
    """Write the report to `path` atomically."""
    story = [_p("DCGAN reproduction report", "title"),
             _p(f"Radford, Metz & Chintala (2015). Published numbers: {report.source}. Metrics: "
                f"{report.metrics_dir} ({report.n_metrics_files} files); provenance: "
                f"{report.provenance_dir}; figures: {report.figures_dir}.", "small")]
    story += _page_one(report, charts) + _tables(report) + _figures(report) + _controls()
    story += _later(report, charts, comparison)
    with atomic_path(path) as tmp:
        doc = SimpleDocTemplate(str(tmp), pagesize=A4, leftMargin=1.5 * cm, rightMargin=1.5 * cm,
                                topMargin=1.5 * cm, bottomMargin=1.5 * cm, invariant=1,
                                title="DCGAN reproduction report")
        doc.build(story, onFirstPage=_number, onLaterPages=_number)
