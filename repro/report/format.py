"""Report content as plain (headers, rows) tables, shared by the Markdown and PDF renderers."""

from __future__ import annotations

import json
import math
from typing import Any

from repro.report.build import (INFORMATIONAL, VERDICTS, CellVerdict, Measured, Report,
                                TableSection)
from repro.report.compare import Change, Comparison
from repro.report.inputs import Provenance

Table = tuple[list[str], list[list[str]]]

RESULT_HEADERS = ["Model", "Published", "Measured ± s (n)", "Difference", "Verdict"]
HARNESS_HEADERS = ["Harness cell", "Compares to", "Measured ± s (n)", "Verdict"]
# protocol facts shown first, in this order; the rest follow alphabetically
_PROTOCOL_FIRST = ("data_source", "dataset", "train_source", "test_source", "n_samples",
                   "n_labels", "profile")
MARKS = "abcdefghijklmnopqrstuvwxyz"


def _num(value: float, unit: str | None, digits: int = 2) -> str:
    if math.isnan(value):
        return "nan"
    if unit == "%":
        return f"{value:.{digits}f}%"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def fmt_published(row: CellVerdict) -> str:
    pub = row.published
    if pub is None:
        return "-"
    # printed as the paper prints it (80.6%, 22.48%), not rounded to our precision
    text = f"{int(pub.value):,}" if pub.unit == "units" else f"{pub.value}%"
    return text + (f" ± {pub.pm}" if pub.pm is not None else "")


def fmt_measured(m: Measured | None) -> str:
    if m is None or m.cell.value is None:
        return "-"
    cell = m.cell
    text = _num(cell.value, cell.unit)
    if cell.std is not None:
        text += f" ± {cell.std:.2f}" if cell.unit == "%" else f" ± {cell.std:.4g}"
    if cell.n_runs is not None:
        text += f" (n={cell.n_runs})"
    return text


def fmt_diff(row: CellVerdict) -> str:
    diff, pub = row.diff, row.published
    if diff is None or pub is None or math.isnan(diff):
        return "-"
    text = f"{diff:+.2f} pp" if pub.unit == "%" else f"{diff:+g}"
    if abs(diff) > 1e-9 and not pub.informational:
        better = (diff > 0) == (pub.direction == "higher")
        text += " (better)" if better else " (worse)"
    return text


def _fact(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def diff_fields(m: Measured) -> list[dict[str, Any]]:
    """The cell's protocol_diff (repro.published.protocol): fields where it differs from the
    paper's protocol, [] when it records none."""
    return list(getattr(m.cell, "protocol_diff", None) or [])


def footnote(row: CellVerdict) -> str:
    """One short line on why a row's verdict is what it is beyond the numbers ('' if none)."""
    if row.reason:
        return row.reason
    m = row.measured
    if m is None:
        return ""
    missing = getattr(m.cell, "missing", None)
    if missing:
        return f"not run: {missing}"
    diff = diff_fields(m)
    if diff:
        return "protocol differs in " + ", ".join(d["field"] for d in diff)
    if not m.cell.comparable and m.cell.deviations:
        return f"{len(m.cell.deviations)} deviations from the paper's protocol"
    return ""


class Marks:
    """Footnote marks of one table: rows with the same footnote share a mark."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}  # text -> mark

    def mark(self, row: CellVerdict) -> str:
        text = footnote(row)
        if not text:
            return ""
        if text not in self.notes:
            self.notes[text] = MARKS[len(self.notes) % len(MARKS)]
        return f" ({self.notes[text]})"

    def lines(self) -> list[str]:
        return [f"({mark}) {text}" for text, mark in self.notes.items()]


def fmt_verdict(row: CellVerdict) -> str:
    if row.published is not None and row.published.informational:
        return "informational"
    return row.verdict


def result_table(section: TableSection) -> tuple[Table, list[str]]:
    """The table as the paper prints it (its row and column order), with footnote lines."""
    marks = Marks()
    rows = [[f"{r.published.row_label}: {r.published.column_label}", fmt_published(r),
             fmt_measured(r.measured), fmt_diff(r), fmt_verdict(r) + marks.mark(r)]
            for r in section.rows if r.published is not None]
    return (RESULT_HEADERS, rows), marks.lines()


def harness_table(rows: list[CellVerdict]) -> tuple[Table, list[str]]:
    marks = Marks()
    return (HARNESS_HEADERS, [
        [r.measured.label if r.measured else "-", r.published.id if r.published else "-",
         fmt_measured(r.measured), fmt_verdict(r) + marks.mark(r)]
        for r in rows
    ]), marks.lines()


def summary_table(report: Report) -> Table:
    counts = report.summary()
    headers = ["Table", *VERDICTS, "result cells", INFORMATIONAL]
    rows = []
    for key, name in [*((t.id, t.spec.title.split(":")[0]) for t in report.tables), ("all", "All")]:
        c = counts[key]
        rows.append([name, *(str(c[v]) for v in VERDICTS), str(sum(c[v] for v in VERDICTS)),
                     str(c[INFORMATIONAL])])
    return headers, rows


def informational_table(report: Report) -> Table:
    """Informational cells (method properties, e.g. parameter counts): not results."""
    return ["Informational cell", "Published", "Measured"], [
        [f"{t.spec.title.split(':')[0]}, {r.published.row_label}: {r.published.column_label}",
         fmt_published(r), fmt_measured(r.measured)]
        for t in report.tables for r in t.rows
        if r.published.informational and r.measured is not None]


def _shared(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items()
            if all(k in d and _fact(d[k]) == _fact(v) for d in dicts[1:])}


def _ordered(facts: dict[str, Any]) -> list[str]:
    keys = [k for k in _PROTOCOL_FIRST if k in facts]
    keys += sorted(k for k in facts if k not in _PROTOCOL_FIRST)
    return [f"{k}={_fact(facts[k])}" for k in keys]


def appendix(rows: list[CellVerdict]) -> tuple[list[str], list[str], list[tuple[str, list[str]]]]:
    """(protocol facts shared by every measured row, deviations shared by every row, per row:
    (label, its differences: from the paper's protocol, then its own facts and deviations))."""
    measured = [r for r in rows if r.measured is not None]
    shared = _shared([r.measured.cell.protocol for r in measured])
    devs = [d for d in (measured[0].measured.cell.deviations if measured else [])
            if all(d in r.measured.cell.deviations for r in measured)]
    out = []
    for r in measured:
        cell = r.measured.cell
        lines = [f"differs from the paper: {d['field']} {_fact(d['run'])} "
                 f"(paper {_fact(d['paper'])})" for d in diff_fields(r.measured)]
        own = {k: v for k, v in cell.protocol.items() if k not in shared}
        if own:
            lines.append("own protocol: " + "; ".join(_ordered(own)))
        lines += [d for d in cell.deviations if d not in devs]
        label = (f"{r.published.row_label}: {r.published.column_label}"
                 if r.published is not None and not r.harness else r.measured.label)
        out.append((label, lines or ["nothing beyond the shared protocol"]))
    return _ordered(shared), devs, out


def figure_numbers(numbers: list[tuple[str, Measured | None]]) -> Table:
    return ["Harness cell", "Value"], [
        [cell_id, fmt_measured(m) if m else "not run"] for cell_id, m in numbers
    ]


def _git(prov: Provenance) -> str:
    rev = prov.git.revision or "-"
    rev = rev[:12] if len(rev) == 40 else rev
    if prov.git.dirty:
        rev += " (dirty)"
    elif prov.git.dirty is None and prov.git.revision:
        rev += " (dirty: unknown)"
    return rev


def provenance_table(provenance: dict[str, Provenance]) -> Table:
    # no start/finish times: the report is a function of its inputs (provenance keeps them)
    headers = ["Stage", "Profile", "Git revision", "Params hash", "Seeds", "Device", "Wall time"]
    rows = []
    for stage, p in provenance.items():
        device = p.device or "-"
        if p.device_name:
            device += f" ({p.device_name})"
        profile = (p.profile or "-") + (" (dry run)" if p.dry_run else "")
        wall = f"{p.wall_time_s:.1f} s" if p.wall_time_s is not None else "-"
        # a train section the profile leaves out: its stage ran and trained nothing
        # (repro.stages.train)
        absent = " (not in this profile)" if (p.model_extra or {}).get("not_in_profile") else ""
        rows.append([(p.stage or stage) + absent, profile, _git(p), p.params_hash or "-",
                     ", ".join(map(str, p.seeds)) or "-", device, wall])
    return headers, rows


SHIPPED_MARK = "from a shipped checkpoint"  # repro.train.shipped.shipped_note


def shipped_table(provenance: dict[str, Provenance], cells: dict[str, Any]) -> Table:
    """Models the run installed instead of training (repro.train.shipped): who trained them and
    which cells (key -> cell with `deviations`) were computed from them."""
    rows = []
    for stage, p in provenance.items():
        s = (p.model_extra or {}).get("shipped")
        if not s:
            continue
        used = sorted(k for k, c in cells.items()
                      if any(SHIPPED_MARK in d and f"({s['name']})" in d for d in c.deviations))
        md5 = ", ".join(f"{f}: {v['md5'][:8]}" for f, v in sorted(s["files"].items())
                        if f.startswith("seed"))
        wall = f"{s['wall_time_s']:.0f} s" if s.get("wall_time_s") is not None else "-"
        rev = str((s.get("git") or {}).get("revision") or "unknown")[:10]
        rows.append([p.stage or stage, s["profile"], rev, ", ".join(map(str, p.seeds)) or "-",
                     wall, md5 or "-", str(len(used))])
    return ["Stage", "Trained by profile", "Git revision", "Seeds", "Training time",
            "md5 (weights)", "Cells computed from it"], rows


def libraries_table(provenance: dict[str, Provenance]) -> Table:
    versions: dict[str, dict[str, list[str]]] = {}
    for stage, p in provenance.items():
        for lib, ver in p.libraries.items():
            versions.setdefault(lib, {}).setdefault(ver, []).append(p.stage or stage)
    rows = []
    for lib in sorted(versions):
        found = versions[lib]
        if len(found) == 1:
            rows.append([lib, next(iter(found))])
        else:  # stages disagree: say which ran with which
            rows.append([lib, "; ".join(f"{v} ({', '.join(s)})" for v, s in sorted(found.items()))])
    return ["Library", "Version"], rows


def _delta(change: Change) -> str:
    delta = change.delta
    if delta is None:
        return "-"
    unit = (change.this or change.other).cell.unit
    return f"{delta:+.2f} pp" if unit == "%" else f"{delta:+.4g}"


def _verdict_change(change: Change) -> str:
    if change.other_verdict == change.this_verdict:
        return f"same ({change.this_verdict})"
    return f"{change.other_verdict} → {change.this_verdict}"


def comparison_tables(comparison: Comparison) -> list[tuple[str, Table]]:
    """(intro line, table) pairs: published cells first, then harness cells."""
    label = comparison.label
    out = []
    if comparison.published:
        out.append(("", (["Published cell", label, "this run", "Change", "Verdict change"], [
            [c.cell, fmt_measured(c.other), fmt_measured(c.this), _delta(c), _verdict_change(c)]
            for c in comparison.published])))
    if comparison.harness:
        out.append(("Harness cells:", (["Measured cell", label, "this run", "Change"], [
            [c.cell, fmt_measured(c.other), fmt_measured(c.this), _delta(c)]
            for c in comparison.harness])))
    return out
