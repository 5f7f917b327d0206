"""Compare this run's metrics with another run's: a directory or a git revision.

`--compare X` accepts
- a directory holding `metrics/` (e.g. a copy of `results/`), or `results/metrics/` (a copy of
  the repository), or being a metrics directory itself;
- a git revision (`HEAD~1`, a tag, a sha): the `*.json` under the metrics directory's path in
  the repository (default `results/metrics`) are read at that revision with `git show`.
Per published cell: the other value, this value, the change and the verdict change; then the
harness cells (compared by value only).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from repro.errors import ReproError
from repro.report.build import CellVerdict, Measured, assess, display_path
from repro.report.inputs import MeasuredCell, parse_json, parse_metrics, read_metrics_dir

DEFAULT_METRICS = "results/metrics"


@dataclass
class Change:
    cell: str  # published id, or measured key for harness cells
    other: Measured | None
    this: Measured | None
    other_verdict: str | None
    this_verdict: str | None

    @property
    def delta(self) -> float | None:
        if (self.other is None or self.this is None or self.other.cell.value is None
                or self.this.cell.value is None):
            return None
        return self.this.cell.value - self.other.cell.value


@dataclass
class Comparison:
    label: str
    published: list[Change]
    harness: list[Change]


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ReproError(f"cannot run git to read --compare revision: {err}") from None


def _metrics_at_revision(rev: str, metrics_dir: Path) -> tuple[str, dict]:
    top = _git(["rev-parse", "--show-toplevel"], Path.cwd())
    if top.returncode != 0:
        raise ReproError(
            f"--compare {rev!r} is not a directory, and {Path.cwd()} is not in a git repository "
            "to read it as a revision from; give a directory holding metrics/ or a git revision"
        )
    root = Path(top.stdout.strip())
    sha = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root)
    if sha.returncode != 0:
        raise ReproError(
            f"--compare {rev!r} is neither a directory nor a git revision of {root}; "
            "give a directory holding metrics/ or a revision (e.g. HEAD~1)"
        )
    try:
        rel = metrics_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # metrics dir outside the repository: use the pipeline's default path
        rel = DEFAULT_METRICS
    listing = _git(["ls-tree", "--name-only", sha.stdout.strip(), "--", f"{rel}/"], root)
    metrics: dict[str, dict[str, MeasuredCell]] = {}
    for path in sorted(p for p in listing.stdout.splitlines() if p.endswith(".json")):
        shown = _git(["show", f"{sha.stdout.strip()}:{path}"], root)
        where = f"{rev}:{path}"
        if shown.returncode != 0:
            raise ReproError(f"cannot read {where}: {shown.stderr.strip()}")
        metrics[Path(path).stem] = parse_metrics(parse_json(shown.stdout, where), where)
    return f"git revision {rev} ({sha.stdout.strip()[:12]})", metrics


def load_other(spec: str, metrics_dir: Path) -> tuple[str, dict[str, dict[str, MeasuredCell]]]:
    """(label, metrics by file stem) of the run named by `--compare`."""
    path = Path(spec)
    if path.is_dir():
        for candidate in (path / "metrics", path / DEFAULT_METRICS, path):
            if candidate.is_dir():
                return display_path(path), read_metrics_dir(candidate)
    return _metrics_at_revision(spec, Path(metrics_dir))


def _verdicts(rows: list[CellVerdict]) -> dict[str, CellVerdict]:
    return {r.published.id: r for r in rows if r.published is not None}


def compare(this_metrics: dict, other_metrics: dict, label: str) -> Comparison:
    this_measured, this_sections, _ = assess(this_metrics)
    other_measured, other_sections, _ = assess(other_metrics)
    this_rows = _verdicts([r for s in this_sections for r in s.rows])
    other_rows = _verdicts([r for s in other_sections for r in s.rows])
    published = []
    main_keys: set[str] = set()
    for pub_id, row in this_rows.items():
        old = other_rows[pub_id]
        if row.measured is None and old.measured is None:
            continue
        main_keys.update(m.key for m in (row.measured, old.measured) if m is not None)
        published.append(Change(pub_id, old.measured, row.measured, old.verdict, row.verdict))
    harness = [
        Change((this_measured.get(key) or other_measured[key]).label,
               other_measured.get(key), this_measured.get(key), None, None)
        for key in sorted((set(this_measured) | set(other_measured)) - main_keys)
    ]
    return Comparison(label, published, harness)


def compare_with(spec: str, metrics_dir: Path) -> Comparison:
    label, other = load_other(spec, metrics_dir)
    return compare(read_metrics_dir(Path(metrics_dir)), other, label)
