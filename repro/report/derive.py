"""What the report derives from a cell's facts instead of trusting the cell's summary fields.

A cell's `value`, `std` and `n_runs` summarise its `runs`; its `comparable` and `protocol_diff`
summarise its stated protocol against the paper's (repro.published.protocol). A stage writes
both, so they agree; a file edited by hand need not. Every cell the report reads is checked
here: the summaries are recomputed from the facts, and a cell whose summaries claim more than
its facts give (a value that is not the mean of its runs, "comparable" with a protocol that
states another dataset) is refused with one error naming the cell, the claim and the facts.

"Not comparable" is never upgraded: it may rest on a field the cell does not state.
(`compares_to` without a published cell is refused by repro.report.build.)
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from repro.errors import ReproError
from repro.published.protocol import FIGURES, Protocol, diff_lines
from repro.tables import protocols

REL_TOL = 1e-9  # float round trips through JSON are exact; this only absorbs summation order

# Protocol fields a cell's `protocol` states as a description for the reader (the evaluator's
# label, the pretraining data's source), not as the value the stage judged: not derivable
# from the cell, so their part of `protocol_diff` is the stage's.
DESCRIBED = frozenset({"evaluator", "pretraining_data"})


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=REL_TOL)


def _edited(where: str, cell_id: str, what: str) -> ReproError:
    return ReproError(f"{where}: cell {cell_id!r} {what}: the file was edited after the stage "
                      "wrote it; rerun the stage that writes it (dvc repro)")


def check_numbers(cell_id: str, cell: Any, where: str) -> None:
    """`value`, `std`, `n_runs` against the runs they summarise (a cell without runs, or
    without a value, claims no summary to check)."""
    runs = [r for r in cell.runs if r is not None]
    if not runs or cell.value is None:  # `value: null` is "not run": it claims no number
        return
    shown = ", ".join(f"{r:g}" for r in runs[:6]) + (", ..." if len(runs) > 6 else "")
    if cell.n_runs is not None and cell.n_runs != len(cell.runs):
        raise _edited(where, cell_id, f"says n_runs = {cell.n_runs} but holds {len(cell.runs)} runs")
    mean = statistics.fmean(runs)
    if not _close(cell.value, mean):
        raise _edited(where, cell_id, f"holds value {cell.value!r}, but the mean of its runs "
                                      f"[{shown}] is {mean:g}")
    if len(runs) > 1 and cell.std is not None and not _close(cell.std, statistics.stdev(runs)):
        raise _edited(where, cell_id, f"holds std {cell.std!r}, but the standard deviation of "
                                      f"its runs [{shown}] is {statistics.stdev(runs):g}")


def _protocol(cell_id: str) -> Protocol | None:
    table = cell_id.split("/")[0]
    return protocols().get(table) or (FIGURES if table.startswith("fig") else None)


def stated_diff(cell_id: str, cell: Any) -> list[dict[str, Any]]:
    """The protocol fields the cell's stated protocol shows differ from the paper's: fields
    that apply to its row's kind and its column and that the cell states (a field it does not
    state cannot be derived, so it is left to the stage's own `protocol_diff`)."""
    protocol = _protocol(cell_id)
    if protocol is None:
        return []
    parts = cell_id.split("/")
    row = protocol.rows.get(parts[1]) if len(parts) > 2 else None
    kind = row.kind if row is not None else None  # an undeclared row: only kind-free fields
    stated = {k: v for k, v in cell.protocol.items() if k not in DESCRIBED}
    return protocol.diff(kind, parts[-1], stated, stated_only=True)


def check_comparability(cell_id: str, cell: Any, where: str) -> None:
    """A cell marked comparable must have a published counterpart, an empty `protocol_diff`
    and a stated protocol that agrees with the paper's wherever it states a field."""
    if not cell.comparable:
        return
    stored = list(getattr(cell, "protocol_diff", None) or [])
    if stored:
        raise _edited(where, cell_id, "is marked comparable but its protocol_diff names "
                                      f"differences ({'; '.join(diff_lines(stored))})")
    derived = stated_diff(cell_id, cell)
    if derived:
        raise _edited(where, cell_id, "is marked comparable with an empty protocol_diff, but its "
                                      f"protocol states {'; '.join(diff_lines(derived))}")


def check_cell(cell_id: str, cell: Any, where: str) -> None:
    """Every summary field of one validated cell (repro.report.inputs.MeasuredCell) against the
    facts it summarises; ReproError naming the cell on the first disagreement."""
    check_numbers(cell_id, cell, where)
    check_comparability(cell_id, cell, where)
