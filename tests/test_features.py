"""BN statistics by the authors' recipe; feature extraction to memory and to an atomic memmap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.data.base import to_float
from repro.errors import ReproError
from repro.eval.features import extract_features, infer_bn_stats
from repro.models.base import Discriminator


class TinyD(Discriminator):
    """conv(3->4, s2) LReLU -> conv(4->6, s2) BN LReLU -> linear; features: each layer max-pooled
    to 2x2, concatenated: 4 * (4 + 6) = 40 dims."""

    def __init__(self, fail_on_call: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        nn.init.normal_(self.bn.weight, 1.0, 0.3)
        nn.init.normal_(self.bn.bias, 0.0, 0.3)
        self.fc = nn.Linear(6 * 2 * 2, 1)
        self.fail_on_call, self.calls = fail_on_call, 0

    def bn_input(self, x):
        return self.conv2(F.leaky_relu(self.conv1(x), 0.2))  # (B, 6, 2, 2)

    def layer_outputs(self, x, y=None):
        h1 = F.leaky_relu(self.conv1(x), 0.2)  # (B, 4, 4, 4)
        h2 = F.leaky_relu(self.bn(self.conv2(h1)), 0.2)  # (B, 6, 2, 2)
        return [h1, h2]

    def forward(self, x, y=None):
        return self.fc(self.layer_outputs(x)[-1].flatten(1)).squeeze(1)

    def feature_vector(self, x):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise RuntimeError("simulated failure")
        return torch.cat([F.adaptive_max_pool2d(h, 2).flatten(1) for h in self.layer_outputs(x)], 1)


def _images(n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)


def test_bn_stats_match_hand_computation():
    D, images = TinyD(), _images(10)
    out = infer_bn_stats(D, images, batch_size=4)  # batches of 4, 4, 2
    assert out == {"n_layers": 1, "n_batches": 3, "n_images": 10}
    assert not D.training and not D.bn.training
    means, variances = [], []
    with torch.no_grad():
        for s in (0, 4, 8):
            h = D.bn_input(to_float(images[s:s + 4])).double()  # (B, 6, 2, 2)
            means.append(h.mean(dim=(0, 2, 3)))
            variances.append(h.var(dim=(0, 2, 3), unbiased=False))
    assert torch.allclose(D.bn.running_mean.double(), torch.stack(means).mean(0), atol=1e-6)
    assert torch.allclose(D.bn.running_var.double(), torch.stack(variances).mean(0), atol=1e-6)
    assert D.bn.momentum == 0.1  # restored
    # a trailing single image is dropped; sigmoid pixel range is honoured
    D2 = TinyD()
    assert infer_bn_stats(D2, _images(9), batch_size=4, pixel_range="sigmoid")["n_batches"] == 2


def test_bn_stats_restore_buffers_dropped_for_batch_stats():
    D = TinyD()
    D.bn.track_running_stats = False
    D.bn.running_mean = D.bn.running_var = D.bn.num_batches_tracked = None
    infer_bn_stats(D, _images(8), batch_size=8)
    assert D.bn.track_running_stats and D.bn.running_var is not None
    assert int(D.bn.num_batches_tracked) == 1


def test_bn_stats_bad_input():
    with pytest.raises(ReproError):
        infer_bn_stats(TinyD(), _images(4).float())
    with pytest.raises(ReproError):
        infer_bn_stats(nn.Sequential(nn.Conv2d(3, 3, 1)), _images(4))


def test_extract_shapes_and_memmap(tmp_path):
    D, images = TinyD(), _images(11)
    infer_bn_stats(D, images, batch_size=4)
    mem = extract_features(D, images, batch_size=4, dtype=np.float32)
    assert mem.shape == (11, 40) and mem.dtype == np.float32
    with torch.no_grad():
        expect = D.feature_vector(to_float(images)).numpy()
    assert np.allclose(mem, expect, atol=1e-5)
    path = tmp_path / "feats.npy"
    mm = extract_features(D, images, batch_size=3, out_path=path)
    assert isinstance(mm, np.memmap) and mm.dtype == np.float16 and mm.shape == (11, 40)
    assert not mm.flags.writeable
    assert np.allclose(mm.astype(np.float32), mem, rtol=1e-3, atol=1e-3)  # fp16 rounding
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.npy"]


def test_extract_atomic_on_failure(tmp_path):
    path = tmp_path / "sub" / "feats.npy"
    with pytest.raises(RuntimeError, match="simulated"):
        extract_features(TinyD(fail_on_call=3), _images(20), batch_size=4, out_path=path)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_extract_limits_and_errors(tmp_path):
    D, images = TinyD(), _images(6)
    with pytest.raises(ReproError, match="out_path"):
        extract_features(D, images, max_bytes=100)  # 6 x 40 x 2 bytes = 480
    assert extract_features(D, images, max_bytes=480).shape == (6, 40)
    ok = extract_features(D, images, max_bytes=100, out_path=tmp_path / "f.npy")
    assert ok.shape == (6, 40)
    with pytest.raises(ReproError):
        extract_features(D, images, dtype=np.int8)
    with pytest.raises(ReproError):
        extract_features(D, images[:0])
    D.fc.weight.data.fill_(1.0)
    D.conv1.weight.data.fill_(1e6)  # features overflow float16
    with pytest.raises(ReproError, match="non-finite"):
        extract_features(D, images, out_path=tmp_path / "g.npy")
    assert not (tmp_path / "g.npy").exists()
