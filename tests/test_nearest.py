"""Exact streaming 1-NN: agrees with sklearn brute force, chunking changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from repro.errors import ReproError
from repro.eval.nearest import (StreamingNN, memory_bound_bytes, nn_error, stream_nn_error)


def _continuous(q=300, r=2000, d=50, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(q, d, generator=g), torch.randint(0, k, (q,), generator=g),
            torch.randn(r, d, generator=g), torch.randint(0, k, (r,), generator=g))


def _digits(q=200, r=1500, k=10, seed=1):
    """784-d uint8-valued, mostly-zero images (MNIST-like), as float in [0, 255]."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        x = torch.randint(0, 256, (n, 784), generator=g)
        x[torch.rand(n, 784, generator=g) < 0.8] = 0
        return x.float()

    return (make(q), torch.randint(0, k, (q,), generator=g),
            make(r), torch.randint(0, k, (r,), generator=g))


def _sklearn_pred(qx, rx, ry):
    clf = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(rx.double().numpy(), ry.numpy())
    return torch.from_numpy(clf.predict(qx.double().numpy()))


def test_matches_sklearn_continuous():
    qx, qy, rx, ry = _continuous()
    nn = StreamingNN(qx)
    nn.update(rx, ry)
    pred = nn.predict()
    assert pred.dtype == torch.int64 and pred.shape == (300,)
    assert torch.equal(pred, _sklearn_pred(qx, rx, ry))
    expect = torch.cdist(qx.double(), rx.double()).pow(2)
    assert torch.equal(nn.best_index, expect.argmin(1))
    assert torch.allclose(nn.best_dist2, expect.min(1).values, rtol=1e-10, atol=1e-9)
    err = nn_error(qx, qy, rx, ry)
    assert err == pytest.approx(100.0 * (pred != qy).double().mean().item())


def test_uint8_images_exact_with_lowest_index_on_ties():
    qx, _, rx, ry = _digits()
    # duplicate a reference later in the stream: an exact tie the earlier copy must win
    rx = torch.cat([rx, rx[:50]])
    ry = torch.cat([ry, (ry[:50] + 1) % 10])
    nn = StreamingNN(qx, ref_block=97)
    nn.update(rx, ry)
    q, r = qx.long(), rx.long()
    d2 = (q * q).sum(1, keepdim=True) - 2 * q @ r.T + (r * r).sum(1)  # exact, int64
    first = torch.from_numpy(np.argmin(d2.numpy(), axis=1))  # numpy: first minimum
    assert torch.equal(nn.best_index, first)
    assert torch.equal(nn.best_dist2, d2.min(1).values.double())  # float64 is exact here
    # sklearn agrees wherever the nearest neighbour is unique
    sorted_d2 = d2.sort(1).values
    unique = sorted_d2[:, 0] < sorted_d2[:, 1]
    assert unique.sum() > 0.9 * len(qx)
    assert torch.equal(nn.predict()[unique], _sklearn_pred(qx, rx, ry)[unique])


@pytest.mark.parametrize("chunk", [1, 7, 333, 2000, 5000])
def test_chunked_equals_one_shot(chunk):
    qx, qy, rx, ry = _continuous()
    if chunk == 1:  # 2000 single-row updates are slow; 300 still cross many blocks
        rx, ry = rx[:300], ry[:300]
    ref = StreamingNN(qx)
    ref.update(rx, ry)
    nn = StreamingNN(qx, query_block=64)
    for s in range(0, len(rx), chunk):
        nn.update(rx[s:s + chunk], ry[s:s + chunk])
    assert nn.n_seen == len(rx)
    assert torch.equal(nn.best_index, ref.best_index)
    assert torch.equal(nn.predict(), ref.predict())
    # prefix property: the stream's state after n refs == 1-NN fitted on the first n refs
    prefix = StreamingNN(qx, ref_block=11)
    prefix.update(rx[:200], ry[:200])
    part = StreamingNN(qx)
    part.update(rx[:200], ry[:200])
    assert torch.equal(prefix.best_index, part.best_index)


def test_float32_option_and_int_labels():
    qx, qy, rx, ry = _continuous(q=50, r=300, d=20)
    nn = StreamingNN(qx, dtype=torch.float32)
    nn.update(rx, ry.int())
    assert nn.predict().dtype == torch.int64
    assert torch.equal(nn.predict(), _sklearn_pred(qx, rx, ry))


def test_stream_driver():
    qx, qy, rx, ry = _continuous(q=60, r=500, d=16)
    chunks = ((rx[s:s + 128], ry[s:s + 128]) for s in range(0, 500, 128))
    out = stream_nn_error(qx, qy, chunks, total=500, desc="test")
    assert out["n_refs"] == 500 and out["seconds"] >= 0
    assert out["error_pct"] == pytest.approx(nn_error(qx, qy, rx, ry))


def test_bad_input():
    qx, qy, rx, ry = _continuous(q=10, r=20, d=5)
    with pytest.raises(ReproError):
        StreamingNN(qx).predict()  # nothing seen
    with pytest.raises(ReproError):
        stream_nn_error(qx, qy, iter(()), total=0)
    nn = StreamingNN(qx)
    with pytest.raises(ReproError):
        nn.update(rx[:, :4], ry)
    with pytest.raises(ReproError):
        nn.update(rx, ry[:5])
    with pytest.raises(ReproError):
        nn.update(rx, ry.float())
    nn.update(rx[:0], ry[:0])  # an empty chunk is a no-op
    assert nn.n_seen == 0


def test_memory_bound():
    small = memory_bound_bytes(10_000, 784, 1024, 4096)
    big = memory_bound_bytes(10_000, 784, 65_536, 4096)
    assert 0 < small < big
    assert memory_bound_bytes(10_000, 784, 65_536, 4096, itemsize=4) < big


def test_float32_screen_decides_as_float64_even_where_float32_cannot_tell():
    """Neighbours closer together than float32 resolves: the screened search (the default)
    still returns the float64 nearest, lowest index on exact ties, like the plain search."""
    g = torch.Generator().manual_seed(3)
    q = torch.rand(40, 784, generator=g, dtype=torch.float64) * 255
    base = q[torch.arange(400) % 40]  # 10 near-copies of every query
    refs = base + 1e-3 * torch.randn(400, 784, generator=g, dtype=torch.float64) + 2.0
    refs[390:] = refs[350:360]  # exact duplicates: ties go to the earlier index
    labels = torch.randint(0, 10, (400,), generator=g)
    exact = torch.cdist(q, refs).pow(2)  # float64 brute force
    plain = StreamingNN(q, screen=False, ref_block=128)
    screened = StreamingNN(q, ref_block=128)
    assert screened.screen and not plain.screen
    for nn in (plain, screened):
        nn.update(refs, labels)
    assert torch.equal(screened.best_index, plain.best_index)
    assert torch.equal(screened.predict(), plain.predict())
    np.testing.assert_array_equal(screened.best_index.numpy(), exact.argmin(1).numpy())
    # both are float64 expansions (summed in another order): equal to its rounding
    torch.testing.assert_close(screened.best_dist2, plain.best_dist2, rtol=1e-9, atol=1e-6)
    assert not StreamingNN(q, dtype=torch.float32).screen
