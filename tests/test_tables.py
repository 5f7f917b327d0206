"""The table registry (repro.tables) is the one list of tables: dvc.yaml's table stages follow
it, and each unit's declarations (config paths, dry-run sizes, seeds, published rows) hold."""

from __future__ import annotations

import pytest
import yaml

from repro.errors import ReproError
from repro.protocols.unit import TableUnit
from repro.published.protocol import ROW, Field, config_value
from repro.tables import TABLES, load_tables, units

from conftest import REPO

STAGE_MODULE = "python -m repro.stages.table"


def _table_stages() -> dict[str, dict]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: st for name, st in stages.items()
            if isinstance(st.get("cmd"), str) and st["cmd"].startswith(STAGE_MODULE)}


def _outs(stage: dict, key: str) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for o in stage.get(key, [])]


def test_dvc_runs_every_registered_table_and_no_other():
    stages = _table_stages()
    assert sorted(stages) == sorted(units()), "add or remove the table's stage in dvc.yaml"
    for name, unit in units().items():
        st = stages[name]
        args = st["cmd"].split()
        assert args[3] == name, f"stage {name} must run its own table: {STAGE_MODULE} {name}"
        metrics = f"${{paths.metrics}}/{unit.metrics}.json"
        assert args[args.index("--metrics") + 1] == metrics
        assert metrics in _outs(st, "metrics")
        assert f"${{paths.metrics}}/{unit.metrics}.cells.json" in _outs(st, "outs")
        assert f"${{paths.provenance}}/{name}.json" in _outs(st, "outs")
        for output in unit.outputs:  # each further output is an option and a declared out
            assert args[args.index(f"--{output}") + 1] in _outs(st, "outs")
        # its section of the resolved profile (check_config's output) is its params
        assert {"${paths.config_check}": [name]} in st["params"]
        # the checkpoints of the section's default rows are deps
        folders = {row.source for row in unit.protocol.rows.values() if row.source}
        deps = set(st["deps"])
        assert {f"${{paths.checkpoints}}/{f}" for f in folders} <= deps | {
            "${paths.checkpoints}/authors_svhn"}, name


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_field_reads_a_path_of_the_section_and_its_default_is_the_papers(name):
    unit: TableUnit = TABLES.get(name)
    cfg = unit.config()
    facts = {f.reads[1:]: f.paper for f in unit.protocol.fields
             if f.reads and f.reads.startswith("@") and f.reads != ROW}
    run = unit.protocol.run_values(cfg, facts)
    for kind in {row.kind for row in unit.protocol.rows.values()}:
        for column in unit.protocol.columns:  # what each row states: the paper's too
            rows = {f.name: unit.protocol.paper(f.name, column=column)
                    for f in unit.protocol.fields if f.reads == ROW and f.applies(kind, column)}
            assert unit.protocol.diff(kind, column, {**run, **rows}) == [], (kind, column)


def test_a_field_that_reads_a_missing_path_or_fact_says_which():
    unit = TABLES.get("table1")
    bad = unit.protocol.__class__(table="t", evaluator=None, rows={}, columns=(),
                                  fields=(Field("per_class", 1, reads="svm.per_class"),))
    with pytest.raises(ReproError, match="reads 'svm.per_class'"):
        bad.run_values(unit.config(), {})
    fact = unit.protocol.__class__(table="t", evaluator=None, rows={}, columns=(),
                                   fields=(Field("n_train", 1, reads="@n_train"),))
    with pytest.raises(ReproError, match="run fact 'n_train'"):
        fact.run_values(unit.config(), {})
    assert fact.run_values(unit.config(), {"n_train": 7}) == {"n_train": 7}  # control


@pytest.mark.parametrize("name", sorted(TABLES))
def test_dry_run_sizes_and_seeds_name_paths_of_the_section(name):
    unit: TableUnit = TABLES.get(name)
    cfg = unit.config()
    shrunk = unit.shrunk(cfg)
    assert shrunk != cfg and unit.dry
    for path in unit.dry:
        config_value(shrunk, path, f"{name} dry")
    for path in unit.seeds:
        assert isinstance(config_value(cfg, path, f"{name} seeds"), int), path


@pytest.mark.parametrize("name", sorted(TABLES))
def test_declared_rows_compare_to_published_rows(name):
    unit: TableUnit = TABLES.get(name)
    layout = load_tables()[name]
    assert set(unit.protocol.columns) <= set(layout.columns)
    for row in unit.protocol.rows.values():
        assert row.published is None or row.published in layout.rows, row
