"""Collect metrics, provenance and figures into a Report: rows, verdicts, sections.

Inputs
------
- `results/metrics/*.json`: the metrics schema of docs/CONVENTIONS.md.
- `results/figures/*.png`: assigned to the paper's figures by `repro/published/figures.yaml`.
- `results/provenance/<stage>.json`, one per stage; every key is optional (a missing one is
  shown as "-"), unknown keys are allowed and ignored:

      {"stage": "table3",                  # default: the file stem
       "profile": "demo",                  # params.yaml `profile`
       "dry_run": false,
       "params_hash": "3f2a9c0b1d4e",      # repro.config.config_hash(<shared params>, <section>)
       "git": {"revision": "<sha>", "dirty": false},   # repro.utils.provenance.git_revision()
       "seeds": [0, 1, 2],
       "device": "cuda",                   # what the stage ran on
       "device_name": "NVIDIA H100 80GB HBM3",
       "libraries": {"python": "3.11.9", "torch": "2.14.1", ...},  # library_versions()
       "wall_time_s": 812.4,
       "started_at": "2025-01-01T10:00:00Z", "finished_at": "2025-01-01T10:13:32Z",
       "deviations": ["..."]}              # the stage section's profile-level `deviations`

Verdicts (one per published cell; measured cells matched through `compares_to`)
-------------------------------------------------------------------------------
- "not run": no measured cell compares to it, or its value is null.
- "not comparable": the measured cell says `comparable: false` (derived from the protocol:
  its `protocol_diff` names the fields that differ, e.g. not real data or a dry run), or its
  unit differs from the published unit.
- "reproduced": |measured - published| <= max(published pm, tolerance) (each table's unit,
  repro/tables, documents its tolerances).
- "not reproduced": otherwise.
The measured std is shown but does NOT widen the band: a noisy measurement must not make a
reproduction easier to claim; a run that wants the benefit of many seeds reports their mean.
When several measured cells compare to one published cell, the main row is the one whose id
equals the published id (then: comparable first, then file/id order); the others, and measured
cells with `compares_to: null`, are extra "(harness)" rows under their table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from repro.errors import ReproError
from repro.published import FigureSpec, PublishedCell, TableSpec, load_figures, paper_source
from repro.report.inputs import (
    MeasuredCell, MetricsFile, Provenance, read_metrics_files, read_provenance_dir,
)
from repro.tables import load_published, load_tables

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_COMPARABLE = "not comparable"
NOT_RUN = "not run"
HARNESS_ONLY = "harness only"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_RUN)
INFORMATIONAL = "informational"

_UNIT_ALIASES = {"%": "%", "pct": "%", "percent": "%", "units": "units", "count": "units"}


@dataclass(frozen=True)
class Measured:
    """A measured cell and the metrics file (stem) it came from."""

    file: str
    id: str
    cell: MeasuredCell

    @property
    def key(self) -> str:
        return f"{self.file}/{self.id}"

    @property
    def label(self) -> str:
        """How the report names it: metrics file stem, then cell id."""
        return f"{self.file}:{self.id}"


@dataclass
class CellVerdict:
    """A published cell beside the measured cell that compares to it (either may be absent),
    with the verdict and why."""
    published: PublishedCell | None
    measured: Measured | None
    verdict: str
    reason: str = ""
    harness: bool = False

    @property
    def diff(self) -> float | None:
        if self.published is None or self.measured is None or self.measured.cell.value is None:
            return None
        return self.measured.cell.value - self.published.value


@dataclass
class TableSection:
    id: str
    spec: TableSpec
    rows: list[CellVerdict]
    harness_rows: list[CellVerdict]
    notes: list[tuple[str, str]]  # (cell id, note)

    @property
    def run(self) -> bool:
        return any(r.measured is not None for r in self.rows + self.harness_rows)


@dataclass
class FigureEntry:
    spec: FigureSpec
    images: list[Path]
    numbers: list[tuple[str, Measured | None]]  # (cell id, measured or None if not run)


@dataclass
class Report:
    source: str
    metrics_dir: str
    provenance_dir: str
    figures_dir: str
    n_metrics_files: int
    metrics_found: bool
    tables: list[TableSection]
    figures: list[FigureEntry]
    other_images: list[Path]
    other_rows: list[CellVerdict]
    deviations: dict[str, list[str]]  # group (table id / "figures" / "other") -> deviations
    provenance: dict[str, Provenance]
    measured: dict[str, Measured] = field(default_factory=dict)  # key -> measured
    # (metrics file stem, problem) for every input that does not belong with the others
    mismatches: list[tuple[str, str]] = field(default_factory=list)
    live_dir: str = ""

    def summary(self) -> dict[str, dict[str, int]]:
        """table id (and "all") -> verdict -> number of published result cells, and
        INFORMATIONAL -> number of informational cells (method properties such as parameter
        counts: shown apart, never counted as a result)."""
        out: dict[str, dict[str, int]] = {}
        for table in self.tables:
            counts = {v: 0 for v in (*VERDICTS, INFORMATIONAL)}
            for row in table.rows:
                counts[INFORMATIONAL if row.published.informational else row.verdict] += 1
            out[table.id] = counts
        out["all"] = {v: sum(c[v] for c in out.values()) for v in (*VERDICTS, INFORMATIONAL)}
        return out


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it (stable in reports)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _unit(unit: str | None) -> str | None:
    return None if unit is None else _UNIT_ALIASES.get(unit.strip().lower(), unit)


def verdict(published: PublishedCell, measured: Measured | None) -> tuple[str, str]:
    """(verdict, reason) for one published cell and the measured cell compared with it."""
    if measured is None or measured.cell.value is None:
        return NOT_RUN, ""
    cell = measured.cell
    if not cell.comparable:
        return NOT_COMPARABLE, ""
    unit = _unit(cell.unit)
    if unit is not None and unit != published.unit:
        return NOT_COMPARABLE, f"unit {cell.unit!r} differs from the paper's {published.unit!r}"
    diff = abs(cell.value - published.value)
    # the epsilon absorbs float noise at the band's edge (e.g. 2.98 + 0.5 vs 3.48)
    if not math.isnan(diff) and diff <= published.band + 1e-9:
        return REPRODUCED, ""
    return NOT_REPRODUCED, ""


def _table_of(cell_id: str) -> str:
    return cell_id.split("/", 1)[0]


def _collect(metrics: dict[str, dict[str, MeasuredCell]],
             published: dict[str, PublishedCell]) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    for stem, cells in metrics.items():
        for cell_id, cell in cells.items():
            if cell.compares_to is not None and cell.compares_to not in published:
                raise ReproError(
                    f"metrics file {stem}.json: cell {cell_id!r} compares_to unknown published "
                    f"cell {cell.compares_to!r}; valid ids are in the table units (repro/tables)"
                )
            m = Measured(stem, cell_id, cell)
            out[m.key] = m
    return out


def _main_first(pub_id: str, candidates: list[Measured]) -> list[Measured]:
    return sorted(candidates, key=lambda m: (m.id != pub_id, not m.cell.comparable, m.file, m.id))


def _tables(published: dict[str, PublishedCell], tables: dict[str, TableSpec],
            measured: dict[str, Measured]) -> tuple[list[TableSection], list[CellVerdict]]:
    by_pub: dict[str, list[Measured]] = {}
    loose: list[Measured] = []
    for m in measured.values():
        if m.cell.compares_to is None:
            loose.append(m)
        else:
            by_pub.setdefault(m.cell.compares_to, []).append(m)
    sections = []
    for table_id, spec in tables.items():
        rows, extra, notes = [], [], []
        for pub in (c for c in published.values() if c.table == table_id):
            found = _main_first(pub.id, by_pub.get(pub.id, []))
            main = found[0] if found else None
            rows.append(CellVerdict(pub, main, *verdict(pub, main)))
            extra += [CellVerdict(pub, m, *verdict(pub, m), harness=True) for m in found[1:]]
            if pub.note:
                notes.append((pub.id, pub.note))
        extra += [CellVerdict(None, m, HARNESS_ONLY, harness=True)
                  for m in loose if _table_of(m.id) == table_id]
        sections.append(TableSection(table_id, spec, rows, extra, notes))
    others = [CellVerdict(None, m, HARNESS_ONLY, harness=True) for m in loose
              if _table_of(m.id) not in tables and not _table_of(m.id).startswith("fig")]
    return sections, others


def _figures(figures_dir: Path, measured: dict[str, Measured]
             ) -> tuple[list[FigureEntry], list[Path]]:
    images = sorted(figures_dir.rglob("*.png")) if figures_dir.is_dir() else []  # stages may own subfolders
    specs = load_figures()
    assigned: dict[str, list[Path]] = {s.id: [] for s in specs}
    other: list[Path] = []
    for image in images:
        owner = next((s for s in specs if s.matches(image.name)), None)
        (assigned[owner.id] if owner else other).append(image)
    by_id: dict[str, Measured] = {}
    for m in measured.values():
        by_id.setdefault(m.id, m)
    entries = [FigureEntry(spec, assigned[spec.id],
                           [(i, by_id.get(i)) for i in figure_cell_ids(spec, by_id)])
               for spec in specs]
    return entries, other


def figure_cell_ids(spec: FigureSpec, measured_ids: Iterable[str]) -> list[str]:
    """A figure's cells: the ones its spec names, then any other measured cell of that figure."""
    return list(spec.cells) + sorted({i for i in measured_ids if _table_of(i) == spec.id}
                                     - set(spec.cells))


def _deviations(measured: dict[str, Measured], tables: dict[str, TableSpec]
                ) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for m in sorted(measured.values(), key=lambda m: (m.file, m.id)):
        group = _table_of(m.cell.compares_to or m.id)
        group = group if group in tables else "figures" if group.startswith("fig") else "other"
        for d in m.cell.deviations:
            if d not in groups.setdefault(group, []):
                groups[group].append(d)
    order = list(tables) + ["figures", "other"]
    return {g: groups[g] for g in order if g in groups}


def assess(metrics: dict[str, dict[str, MeasuredCell]]
           ) -> tuple[dict[str, Measured], list[TableSection], list[CellVerdict]]:
    """Measured cells by key, the table sections with verdicts, and the non-table harness rows."""
    published = load_published()
    measured = _collect(metrics, published)
    sections, others = _tables(published, load_tables(), measured)
    return measured, sections, others


def _short(rev: str | None) -> str:
    return (rev or "none")[:12]


def input_mismatches(files: dict[str, MetricsFile], provenance: dict[str, Provenance]
                     ) -> list[tuple[str, str]]:
    """(metrics file, problem) where a metrics file and its stage's provenance disagree on the
    git revision or params hash, or where the metrics files come from several revisions (a
    partial run: some tables are older than the rest)."""
    out = []
    revisions: dict[str, list[str]] = {}
    for stem, f in files.items():
        signed = f.written_by
        if not signed:
            out.append((stem, "records no writer (stage, revision, params hash): written "
                              "before metrics were signed; rerun its stage to check it"))
            continue
        stage, git = signed.get("stage"), signed.get("git") or {}
        revisions.setdefault(_short(git.get("revision")), []).append(stem)
        prov = provenance.get(stage)
        if prov is None:
            out.append((stem, f"written by stage {stage!r}, which has no provenance file"))
            continue
        if git.get("revision") != prov.git.revision:
            out.append((stem, f"git revision {_short(git.get('revision'))} differs from its "
                              f"provenance's {_short(prov.git.revision)}"))
        if signed.get("params_hash") != prov.params_hash:
            out.append((stem, f"params hash {signed.get('params_hash')} differs from its "
                              f"provenance's {prov.params_hash}"))
    if len(revisions) > 1:
        groups = "; ".join(f"{rev}: {', '.join(stems)}" for rev, stems in sorted(revisions.items()))
        out.append(("(all)", f"metrics files come from {len(revisions)} git revisions ({groups})"))
    return out


def build_report(metrics_dir: Path, provenance_dir: Path, figures_dir: Path,
                 live_dir: Path | None = None) -> Report:
    """Everything the renderers need; missing directories give "not run" sections."""
    files = read_metrics_files(Path(metrics_dir))
    metrics = {stem: f.cells for stem, f in files.items()}
    measured, sections, others = assess(metrics)
    tables = load_tables()
    figures, other_images = _figures(Path(figures_dir), measured)
    provenance = read_provenance_dir(Path(provenance_dir))
    return Report(
        source=paper_source(),
        metrics_dir=display_path(metrics_dir),
        provenance_dir=display_path(provenance_dir),
        figures_dir=display_path(figures_dir),
        n_metrics_files=len(metrics),
        metrics_found=Path(metrics_dir).is_dir(),
        tables=sections,
        figures=figures,
        other_images=other_images,
        other_rows=others,
        deviations=_deviations(measured, tables),
        provenance=provenance,
        measured=measured,
        mismatches=input_mismatches(files, provenance),
        live_dir=display_path(live_dir) if live_dir is not None else "",
    )
