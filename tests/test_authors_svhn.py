"""Port of the authors' SVHN DCGAN checkpoint (../shared/checkpoints/dcgan_code_svhn).

Skips when ../shared is absent. The golden fingerprint is regenerated (only after a deliberate
change to the port) with, from the repository root:
  .venv/bin/python -m repro.models.authors_svhn --folder ../shared/checkpoints/dcgan_code_svhn \
      --write-fingerprint tests/golden/authors_svhn_fingerprint.json
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.errors import ReproError
from repro.models import authors_svhn as A
from repro.utils.io import read_json

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "checkpoints" / "dcgan_code_svhn"
GOLDEN = Path(__file__).resolve().parent / "golden" / "authors_svhn_fingerprint.json"
TOL = 2e-4  # the golden is rounded to 1e-4; allow BLAS / thread-count differences below that

pytestmark = pytest.mark.skipif(not FOLDER.is_dir(), reason=f"{FOLDER} is absent")


@pytest.fixture(scope="module")
def port():
    return A.load_authors_svhn(FOLDER)


def test_fingerprint_matches_golden(port):
    G, D = port
    got, want = A.fingerprint(G, D), read_json(GOLDEN)
    assert got["z"] == want["z"] and got["pixel_positions"] == want["pixel_positions"]
    for key in ("channel_means", "pixels_sample0", "d_logits_first4"):
        np.testing.assert_allclose(got[key], want[key], atol=TOL, rtol=0, err_msg=key)


def test_generator_uses_batch_statistics_and_eps(port):
    G, D = port
    G.eval()  # must not switch to running averages: the original G has none
    z = torch.randn(100, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x_eval = G(z)
        G.train()
        x_train = G(z)
    assert torch.equal(x_eval, x_train) and x_eval.shape == (100, 3, 32, 32)
    assert -1 <= x_eval.min() and x_eval.max() <= 1
    bns = [m for net in (G, D) for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 5 and all(bn.eps == A.BN_EPS for bn in bns)


def test_discriminator_logits_and_features(port):
    _, D = port
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        D.train()
        logits = D(x)
        feats = D.feature_vector(x)
    assert logits.shape == (8,) and torch.isfinite(logits).all()
    assert feats.shape == (8, 7168) and torch.isfinite(feats).all()


def test_jl_index_gives_parameter_order():
    """The .jl files only name their companion .npy files, in parameter order."""
    assert A.read_jl_index(FOLDER / A.D_INDEX) == A.D_FILES
    assert A.read_jl_index(FOLDER / A.G_INDEX) == A.G_FILES
    arrays = A.load_jl(FOLDER / A.G_INDEX)
    assert [a.shape for a in arrays][:4] == [(100, 4096), (4096,), (4096,), (256, 128, 5, 5)]
    assert np.array_equal(arrays[0], np.load(FOLDER / A.G_FILES[0]))


def test_pins_agree_with_shipped_md5sums():
    for line in (FOLDER / "MD5SUMS").read_text().splitlines():
        digest, name = line.split()
        assert A.PINNED_MD5[name] == digest


def test_corrupt_or_missing_file_is_refused(tmp_path):
    copy = tmp_path / "ckpt"
    shutil.copytree(FOLDER, copy)
    victim = copy / A.G_FILES[3]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ReproError, match=rf"{A.G_FILES[3]} fails its md5 check.*re-download"):
        A.load_authors_svhn(copy)
    victim.unlink()
    with pytest.raises(ReproError, match=rf"{A.G_FILES[3]} is missing"):
        A.load_authors_svhn(copy)
    with pytest.raises(ReproError, match="does not exist"):
        A.load_authors_svhn(tmp_path / "nowhere")


def test_fetch_reports_network_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_NET_TIMEOUT", "2")
    monkeypatch.setenv("REPRO_NET_TRIES", "1")
    with pytest.raises(ReproError, match="could not download .*127.0.0.1:9/200_discrim"):
        A.fetch_authors_svhn(tmp_path / "dl", url_base="http://127.0.0.1:9/")
    assert not any((tmp_path / "dl").glob("*.part"))
