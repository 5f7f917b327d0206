"""Report content as plain (headers, rows) tables, shared by the Markdown and PDF renderers."""

from __future__ import annotations

import json
import math
from typing import Any

from repro.report.build import VERDICTS, Measured, Report, Row, TableSection
from repro.report.compare import Change, Comparison
from repro.report.inputs import Provenance

Table = tuple[list[str], list[list[str]]]

MAIN_HEADERS = ["Model", "Column", "Published", "Measured ± std (n)", "Difference",
                "Verdict", "Protocol"]
HARNESS_HEADERS = ["Measured cell", "Compares to", "Published", "Measured ± std (n)",
                   "Difference", "Verdict", "Protocol"]
# protocol facts shown first, in this order; the rest follow alphabetically
_PROTOCOL_FIRST = ("data_source", "dataset", "n_samples", "n_labels", "profile")


def _num(value: float, unit: str | None, digits: int = 2) -> str:
    if math.isnan(value):
        return "nan"
    if unit == "%":
        return f"{value:.{digits}f}%"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def fmt_published(row: Row) -> str:
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


def fmt_diff(row: Row) -> str:
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


def fmt_protocol(row: Row) -> str:
    facts = row.measured.cell.protocol if row.measured else {}
    keys = [k for k in _PROTOCOL_FIRST if k in facts]
    keys += sorted(k for k in facts if k not in _PROTOCOL_FIRST)
    parts = [f"{k}={_fact(facts[k])}" for k in keys]
    diff = getattr(row.measured.cell, "protocol_diff", None) if row.measured else None
    if diff:  # what makes the cell not comparable, field by field (repro.published.protocol)
        parts.insert(0, "differs from the paper's: " + ", ".join(
            f"{d['field']} {_fact(d['run'])} (paper {_fact(d['paper'])})" for d in diff))
    if row.reason:
        parts.insert(0, row.reason)
    return "; ".join(parts) or "-"


def fmt_verdict(row: Row) -> str:
    if row.published is not None and row.published.informational and row.verdict != "not run":
        return f"{row.verdict} (informational)"
    return row.verdict


def main_table(section: TableSection) -> Table:
    rows = [[r.published.row_label, r.published.column_label, fmt_published(r),
             fmt_measured(r.measured), fmt_diff(r), fmt_verdict(r), fmt_protocol(r)]
            for r in section.rows if r.published is not None]
    return MAIN_HEADERS, rows


def harness_table(rows: list[Row]) -> Table:
    return HARNESS_HEADERS, [
        [f"{r.measured.label} (harness)" if r.measured else "-",
         r.published.id if r.published else "-",
         fmt_published(r), fmt_measured(r.measured), fmt_diff(r), fmt_verdict(r),
         fmt_protocol(r)]
        for r in rows
    ]


def summary_table(report: Report) -> Table:
    counts = report.summary()
    headers = ["Table", *VERDICTS, "published cells"]
    rows = []
    for table in report.tables:
        c = counts[table.id]
        rows.append([table.spec.title.split(":")[0], *(str(c[v]) for v in VERDICTS),
                     str(sum(c.values()))])
    c = counts["all"]
    rows.append(["All", *(str(c[v]) for v in VERDICTS), str(sum(c.values()))])
    return headers, rows


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
    headers = ["Stage", "Profile", "Git revision", "Params hash", "Seeds", "Device",
               "Wall time", "Started"]
    rows = []
    for stage, p in provenance.items():
        device = p.device or "-"
        if p.device_name:
            device += f" ({p.device_name})"
        profile = (p.profile or "-") + (" (dry run)" if p.dry_run else "")
        wall = f"{p.wall_time_s:.1f} s" if p.wall_time_s is not None else "-"
        rows.append([p.stage or stage, profile, _git(p), p.params_hash or "-",
                     ", ".join(map(str, p.seeds)) or "-", device, wall, p.started_at or "-"])
    return headers, rows


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
