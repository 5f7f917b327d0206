"""The drift gate's kept seed runs (`smoke_gate --update --runs DIR`): a seed measured once is
read back by a later update of the same tree, and measured again when the tree changed."""

import subprocess

import pytest

from repro.errors import ReproError
from repro.report.seed_runs import SeedRuns, tree_id


def _git_repo(path):
    path.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "code.py").write_text("A = 1\n")
    subprocess.run(["git", "add", "."], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=path, check=True)
    return path


def _counter():
    calls = []

    def measure(value):
        def run():
            calls.append(value)
            return {"t/cell": value}, {"t/cell": "share"}
        return run
    return calls, measure


def test_a_kept_run_is_read_back_by_the_same_tree_and_remeasured_after_a_change(tmp_path):
    repo, store_dir = _git_repo(tmp_path / "repo"), tmp_path / "runs"
    calls, measure = _counter()
    assert SeedRuns(store_dir, repo, "stage:figures").get(3, measure(0.5)) == (
        {"t/cell": 0.5}, {"t/cell": "share"})
    # a second update of the same tree: read back, not measured
    assert SeedRuns(store_dir, repo, "stage:figures").get(3, measure(0.7))[0] == {"t/cell": 0.5}
    assert calls == [0.5]
    # another kind of update, or an uncommitted change, or an untracked file: measured again
    assert SeedRuns(store_dir, repo, "pipeline").get(3, measure(0.6))[0] == {"t/cell": 0.6}
    before = tree_id(repo)
    (repo / "code.py").write_text("A = 2\n")
    assert tree_id(repo) != before
    assert SeedRuns(store_dir, repo, "stage:figures").get(3, measure(0.8))[0] == {"t/cell": 0.8}
    changed = tree_id(repo)
    (repo / "new.py").write_text("B = 1\n")
    assert tree_id(repo) != changed
    assert calls == [0.5, 0.6, 0.8]


def test_without_a_folder_nothing_is_kept_and_outside_git_nothing_is_trusted(tmp_path):
    calls, measure = _counter()
    SeedRuns(None, tmp_path, "pipeline").get(0, measure(1.0))
    SeedRuns(None, tmp_path, "pipeline").get(0, measure(1.0))
    plain = tmp_path / "not_git"
    plain.mkdir()
    assert tree_id(plain) is None
    SeedRuns(tmp_path / "runs", plain, "pipeline").get(0, measure(1.0))
    SeedRuns(tmp_path / "runs", plain, "pipeline").get(0, measure(1.0))
    assert calls == [1.0] * 4


def test_runs_must_name_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReproError, match="not a folder"):
        SeedRuns(tmp_path / "file", tmp_path, "pipeline")
