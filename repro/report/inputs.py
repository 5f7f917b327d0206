"""Reading the pipeline's outputs: metrics files and provenance files, validated.

The metrics schema is the one in docs/CONVENTIONS.md; the provenance schema is documented in
`repro.report.build`. A missing directory is "nothing run yet" (empty result); a file that is
not valid JSON or does not follow the schema raises ReproError naming the file and the cell.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from repro.errors import ReproError
from repro.report.derive import check_cell
from repro.utils.finite import nonfinite
from repro.utils.io import cells_path, is_numbers_file, read_metrics_pair


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """The pipeline's outputs a report reads, as options: `python -m repro.report` and
    `python -m repro.report.readme` read the same ones."""
    parser.add_argument("--metrics", type=Path, default=Path("results/metrics"),
                        help="folder of metrics file pairs (<name>.json numbers + "
                             "<name>.cells.json metadata) written by the table and figure stages")
    parser.add_argument("--provenance", type=Path, default=Path("results/provenance"),
                        help="folder of <stage>.json provenance files; the report checks each "
                             "metrics file against its stage's revision and params hash")
    parser.add_argument("--figures", type=Path, default=Path("results/figures"),
                        help="folder searched (recursively) for the figures' PNGs")


class MeasuredCell(BaseModel):
    """One cell of a metrics file (docs/CONVENTIONS.md, "Metrics schema")."""

    # Unknown keys are kept, not refused: a stage may add a field before the report uses it.
    model_config = ConfigDict(extra="allow", frozen=True)

    value: float | None
    std: float | None = None
    n_runs: int | None = Field(default=None, ge=0)
    unit: str | None = None
    seeds: list[int] = Field(default_factory=list)
    runs: list[float | None] = Field(default_factory=list)
    compares_to: str | None = None
    comparable: bool
    protocol: dict[str, Any] = Field(default_factory=dict)
    deviations: list[str] = Field(default_factory=list)


class GitInfo(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    revision: str | None = None
    dirty: bool | None = None


class Provenance(BaseModel):
    """One `results/provenance/<stage>.json` (schema: see repro.report.build)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    stage: str | None = None
    profile: str | None = None
    dry_run: bool | None = None
    params_hash: str | None = None
    git: GitInfo = Field(default_factory=GitInfo)
    seeds: list[int] = Field(default_factory=list)
    device: str | None = None
    device_name: str | None = None
    platform: dict[str, Any] = Field(default_factory=dict)  # repro.utils.platform.fingerprint
    libraries: dict[str, str] = Field(default_factory=dict)
    wall_time_s: float | None = None
    started_at: str | None = None
    finished_at: str | None = None
    deviations: list[str] = Field(default_factory=list)


def _problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
    )


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReproError(
            f"{where} is not valid JSON ({err}); rerun the stage that writes it"
        ) from None


def parse_metrics(data: Any, where: str) -> dict[str, MeasuredCell]:
    """Validate one metrics file's content: a mapping of cell id -> cell."""
    if not isinstance(data, dict):
        raise ReproError(
            f"{where} must map cell ids to cells (docs/CONVENTIONS.md), "
            f"not a {type(data).__name__}; rerun the stage that writes it"
        )
    cells: dict[str, MeasuredCell] = {}
    for cell_id, cell in data.items():
        bad = nonfinite(cell)  # json reads NaN / Infinity literals as floats
        if bad:
            raise ReproError(
                f"{where}: cell {cell_id!r} holds a non-finite number ({'; '.join(bad)}); "
                "metrics must be finite numbers or null: rerun the stage that writes it"
            )
        try:
            cells[cell_id] = MeasuredCell.model_validate(cell)
        except ValidationError as err:
            raise ReproError(
                f"{where}: cell {cell_id!r} does not follow the metrics schema "
                f"(docs/CONVENTIONS.md): {_problems(err)}"
            ) from None
        # summaries recomputed from the facts: an edited cell is refused (repro.report.derive)
        check_cell(cell_id, cells[cell_id], where)
    return cells


@dataclass(frozen=True)
class MetricsFile:
    """One metrics file pair: its cells and who wrote it (stage, git, params_hash; may be {})."""

    cells: dict[str, MeasuredCell]
    written_by: dict[str, Any]


def parse_metrics_pair(numbers_text: str, cells_text: str | None, where: str) -> MetricsFile:
    """A numbers file and its sibling (repro.utils.io.read_metrics_pair), validated."""
    cells, written_by = read_metrics_pair(numbers_text, cells_text, where)
    return MetricsFile(parse_metrics(cells, where), written_by)


def read_metrics_files(directory: Path) -> dict[str, MetricsFile]:
    """file stem -> metrics file pair, for every numbers file in `directory` (empty if none)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    out = {}
    # an interrupted table stage's finished rows are not metrics (repro.protocols.rows)
    for path in sorted(p for p in directory.glob("*.json") if is_numbers_file(p)):
        sibling = cells_path(path)
        out[path.stem] = parse_metrics_pair(
            path.read_text(), sibling.read_text() if sibling.is_file() else None, str(path))
    return out


def read_metrics_dir(directory: Path) -> dict[str, dict[str, MeasuredCell]]:
    """file stem -> cells, for every metrics file in `directory` (empty if it does not exist).
    The one reader of metrics cells: the report, --compare and the drift gate all use it."""
    return {stem: f.cells for stem, f in read_metrics_files(directory).items()}


def read_provenance_dir(directory: Path) -> dict[str, Provenance]:
    """stage -> provenance, for every *.json in `directory` (empty if it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    out: dict[str, Provenance] = {}
    for path in sorted(directory.glob("*.json")):
        data = parse_json(path.read_text(), str(path))
        try:
            prov = Provenance.model_validate(data)
        except ValidationError as err:
            raise ReproError(
                f"{path} does not follow the provenance schema (see repro/report/build.py): "
                f"{_problems(err)}"
            ) from None
        out[path.stem] = prov if prov.stage else prov.model_copy(update={"stage": path.stem})
    return out
