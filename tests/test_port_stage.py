"""The port_svhn stage: the authors' checkpoint becomes a harness checkpoint (or a MISSING note)."""

from __future__ import annotations

import json

import pytest
import yaml

from repro.errors import ReproError
from repro.models.authors_svhn import fingerprint
from repro.models.checkpoint import build_from_checkpoint
from repro.stages import port_svhn

from conftest import REPO


def _project(tmp, folders, required=False):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(profile="t", data={"root": str(tmp / "data"), "download": False, "search": []})
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp / "experiments").mkdir()
    (tmp / "experiments" / "t.yaml").write_text(yaml.safe_dump(
        {"port_svhn": {"folders": [str(f) for f in folders], "fetch": True, "required": required}}))


def test_port_writes_a_loadable_checkpoint_that_reproduces_the_golden(tmp_path, monkeypatch,
                                                                      shared_dir):
    _project(tmp_path, [shared_dir / "checkpoints" / "dcgan_code_svhn"])
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ckpt"
    out.mkdir()
    port_svhn.run(out, tmp_path / "fig.png", tmp_path / "prov")
    variant, G, D, ckpt = build_from_checkpoint(out / "authors.pt")
    assert variant.spec.name == "svhn32_authors" and ckpt["seed"] is None
    golden = json.loads((REPO / "tests" / "golden" / "authors_svhn_fingerprint.json").read_text())
    assert fingerprint(G, D) == golden
    assert (tmp_path / "fig.png").stat().st_size > 1000
    assert json.loads((tmp_path / "prov" / "port_svhn.json").read_text())["found"] is True


def test_missing_checkpoint_is_a_note_or_an_error(tmp_path, monkeypatch):
    _project(tmp_path, [tmp_path / "nowhere"])
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ckpt"
    out.mkdir()
    port_svhn.run(out, tmp_path / "fig.png", tmp_path / "prov")
    reason = json.loads((out / "MISSING.json").read_text())["reason"]
    assert "nowhere: not found" in reason and "dcgan_code_svhn" in reason
    assert not (out / "authors.pt").exists() and (tmp_path / "fig.png").is_file()
    _project_required = tmp_path / "req"
    _project_required.mkdir()
    _project(_project_required, [tmp_path / "nowhere"], required=True)
    monkeypatch.chdir(_project_required)
    with pytest.raises(ReproError, match="authors' SVHN checkpoint was not found"):
        port_svhn.run(out, tmp_path / "fig2.png", tmp_path / "prov")
