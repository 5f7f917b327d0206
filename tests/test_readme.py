"""The README stays one page that agrees with the code: at most 150 lines, the two set-up
commands CI runs, links to docs/ pages that exist, no typed timing or measured figure in its
prose, and a results table that `python -m repro.report.readme` regenerates from the committed
metrics (after an intended change to a metrics file: run that command, commit README.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from repro.report.readme import BEGIN, END, main

from conftest import REPO

README = REPO / "README.md"
CI = REPO / ".ci" / "run"
MAX_LINES = 150
LINK = re.compile(r"\]\(([^)\s]+)\)")
# a number with a unit of time, size, share or speed-up: what a measurement looks like in prose
MEASURED = re.compile(r"(~\s*|\b)\d[\d,.]*\s*(%|pp|ms|s|sec|seconds?|min|minutes?|h|hours?|[KMG]i?B|x)"
                      r"(?![\w/])")
# docs/CONVENTIONS.md states limits for code (module lines, a test file's time), not results
CHECKED = [README, *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "CONVENTIONS.md")]


def _text() -> str:
    return README.read_text()


def _prose(text: str) -> str:
    """The text without fenced code blocks, inline code (names, commands) and the generated
    table."""
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), "", text, flags=re.S)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _setup_commands(text: str) -> dict[str, str]:
    """'1'/'2' -> the command under the comment `# 1. ...` / `# 2. ...` of the set-up block."""
    block = text.split("## Set-up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [l.strip() for l in block.splitlines() if l.strip()]
    return {m.group(1): lines[i + 1] for i, l in enumerate(lines)
            if (m := re.match(r"# (\d)\. ", l))}


def _broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose target does not exist."""
    out = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+://|#|mailto:", target):
            continue
        if not (path.parent / target.split("#", 1)[0]).exists():
            out.append(target)
    return out


def test_readme_is_one_page():
    n = len(_text().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines (at most {MAX_LINES}): move detail to docs/"


def test_setup_commands_are_what_ci_runs():
    cmds = _setup_commands(_text())
    assert set(cmds) == {"1", "2"}, cmds
    install = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]'"
    assert cmds["1"] == f"{install} && dvc repro"
    assert cmds["2"] == f"{install} && python -m pytest -q"
    ci = [l.strip() for l in CI.read_text().splitlines()]
    assert "python3 -m venv .venv" in ci
    assert any(l.startswith("python -m pip install") and '-e ".[${REPRO_EXTRAS:-test}]"' in l
               for l in ci), "the README installs the `test` extra: .ci/run must default to it"
    assert "python -m pytest -q" in ci, ".ci/run must run the README's test command"


def test_readme_names_the_default_profile():
    profile = yaml.safe_load((REPO / "params.yaml").read_text())["profile"]
    assert f"(profile `{profile}`" in _text()


def test_readme_links_only_to_docs_that_exist():
    targets = [t for t in LINK.findall(_text()) if not re.match(r"[a-z]+://|#", t)]
    assert targets and all(t.startswith("docs/") for t in targets), targets
    assert _broken_links(README) == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {t.split("#", 1)[0] for t in LINK.findall(_text())}
    pages = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert pages - linked == set(), "add these pages to the README's Read more table"


@pytest.mark.parametrize("page", sorted((REPO / "docs").glob("*.md")), ids=lambda p: p.name)
def test_docs_links_resolve(page):
    assert _broken_links(page) == []


# what a path in the docs looks like (in backticks); what a run makes and git does not hold
PATH = re.compile(r"`((?:repro|tests|tools|experiments|results|reports|docs|\.ci|\.github)/[^`\s<>*{}$]*)`")
MADE_BY_A_RUN = ("results/bench_gpu.json", "results/checkpoints/")  # the GPU check; DVC's cache


def _missing_paths(page: Path) -> list[str]:
    """Repository paths a page names that do not exist (placeholders and globs skipped)."""
    return [p for p in PATH.findall(page.read_text())
            if not p.startswith(MADE_BY_A_RUN) and not (REPO / p.rstrip("/")).exists()]


@pytest.mark.parametrize("page", [README, *sorted((REPO / "docs").glob("*.md"))],
                         ids=lambda p: p.name)
def test_paths_the_docs_name_exist(page):
    assert _missing_paths(page) == [], f"{page.name} names paths the code no longer has"


def test_missing_path_is_found(tmp_path):
    """Control: the path check sees a path that is gone and skips placeholders and globs."""
    page = tmp_path / "page.md"
    page.write_text("`repro/config.py` `repro/gone.py` `results/provenance/<stage>.json` "
                    "`results/figures/fig{2..8}_*.png` `results/checkpoints/x/seed0.pt`\n")
    assert _missing_paths(page) == ["repro/gone.py"]


def test_broken_link_is_found(tmp_path):
    """Control: the link check sees a missing page and accepts an existing one."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("")
    page = tmp_path / "README.md"
    page.write_text("[a](docs/here.md) [b](docs/gone.md#x) [c](https://example.org)\n")
    assert _broken_links(page) == ["docs/gone.md#x"]


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: p.name)
def test_no_typed_measurement_in_prose(page):
    found = [m.group(0) for m in MEASURED.finditer(_prose(page.read_text()))]
    assert found == [], (f"{page.name} types measured figures {found}: point to the file that "
                         "holds them (results/...) or generate the sentence from it")


@pytest.mark.parametrize("sentence, flagged", [
    ("the run took about 8 minutes on 2 cores", True),
    ("its ratio was 1.12x there", True),
    ("weights of ~10 MB each", True),
    ("a loop of ~40 steps", False),
    ("an error of 2.5%", True),
    ("Tables 1-3 and Figs. 2-8 on 64x64 rooms, Python 3.10+", False),
])
def test_measurement_pattern_control(sentence, flagged):
    assert bool(MEASURED.search(_prose(sentence))) is flagged


def test_results_table_is_regenerated_from_the_committed_metrics(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    main(["--check"])  # exits 1 when README.md's table differs from results/metrics
    assert "up to date" in capsys.readouterr().out


def test_stale_table_is_named(tmp_path, monkeypatch, capsys):
    """Control: a README whose table is not the metrics' fails --check; one without the
    markers is an error that says where the table goes."""
    monkeypatch.chdir(REPO)
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{BEGIN}\n| typed | 1.0 |\n{END}\n")
    with pytest.raises(SystemExit) as err:
        main(["--check", "--readme", str(stale)])
    assert err.value.code == 1 and "python -m repro.report.readme" in capsys.readouterr().err
    main(["--readme", str(stale)])
    assert "DCGAN" in stale.read_text() and "| typed |" not in stale.read_text()
    stale.write_text("# no markers\n")
    with pytest.raises(SystemExit) as err:
        main(["--readme", str(stale)])
    assert err.value.code == 2 and "put them where the table goes" in capsys.readouterr().err
