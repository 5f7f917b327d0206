"""Stage: one table, declared by its unit (repro.tables), on the shared runner
(repro.protocols.runner).

    python -m repro.stages.table table1 --checkpoints results/checkpoints \
        --metrics results/metrics/table1_cifar10.json --provenance results/provenance

A unit's further outputs are options too (table3: `--figure results/figures/fig9_mnist_cond.png`,
Fig. 9's collage). Each finished row is kept in `<metrics>.partial.json` beside the metrics file
(not a declared output, so `dvc repro` leaves it); a rerun with the same config and inputs
reuses those rows, and the file is removed once the metrics file is written
(repro.protocols.rows).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from repro.context import Stage
from repro.errors import ReproError, cli_errors
from repro.protocols.runner import run_table
from repro.protocols.unit import TableUnit
from repro.stages.common import stage_main
from repro.tables import TABLES


def stage_entry(unit: TableUnit, doc: str) -> Callable[[list[str] | None], None]:
    """`main` of a table's stage: `--checkpoints --metrics --provenance` and the unit's
    further outputs (`--<name> PATH` each)."""
    extra = list(unit.outputs)

    def run(checkpoints: Path, metrics_path: Path, provenance_dir: Path, *paths: Path) -> None:
        run_table(unit, Stage.open(unit.name, unit.config, unit.name), checkpoints,
                  metrics_path, provenance_dir, outputs=dict(zip(extra, paths)))
    return lambda argv=None: stage_main(run, doc, ["checkpoints", "metrics", "provenance", *extra],
                                        argv)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        raise ReproError("name the table first: python -m repro.stages.table NAME --checkpoints "
                         f"... (tables: {', '.join(TABLES)})")
    stage_entry(TABLES.get(argv[0]), __doc__)(argv[1:])


if __name__ == "__main__":
    main()
