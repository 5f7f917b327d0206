"""1-NN: ours (StreamingNN) vs scikit-learn brute force; and the Table 3 stream (generation
of N labelled mnist_cond samples + 1-NN against the test queries), projected to 10M x 10k."""

from __future__ import annotations

import time

import numpy as np
import torch

from repro.bench.common import NN_10M_TARGET_S, class_images, comparison, sync, timed
from repro.bench.roofline import count_flops, roofline
from repro.eval.nearest import StreamingNN, nn_error
from repro.registry import MODELS
from repro.train.sampling import generate
from repro.utils.progress import progress


def _flat(images: torch.Tensor) -> torch.Tensor:
    return images.float().flatten(1) / 255.0  # (N, 784) in [0, 1]


def bench_nn(device: torch.device, n_refs: int, n_queries: int, repeats: int,
             peak: dict | None = None) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    imgs, labels = class_images(n_refs + n_queries, 1, 28, 10, seed=4)
    x = _flat(imgs)
    refs, queries = x[:n_refs], x[n_refs:]
    r_lab, q_lab = labels[:n_refs], labels[n_refs:]
    refs_np, queries_np = refs.numpy(), queries.numpy()  # float32, as one would pass them
    ours_t, ours32_t, alt_t = [], [], []
    for _ in range(repeats):
        t, err = timed(lambda: nn_error(queries, q_lab, refs, r_lab, device=device), device)
        ours_t.append(t)
        t, err32 = timed(lambda: nn_error(queries, q_lab, refs, r_lab, device=device,
                                          dtype=torch.float32), device)
        ours32_t.append(t)
        knn = KNeighborsClassifier(n_neighbors=1, algorithm="brute")
        t, pred = timed(lambda: knn.fit(refs_np, r_lab.numpy()).predict(queries_np), device)
        alt_t.append(t)
    alt_err = 100.0 * float(np.mean(pred != q_lab.numpy()))
    # both sides do the n_refs x n_queries x 784 distance product (sklearn through BLAS)
    flops = 2.0 * n_refs * n_queries * 784
    rec = comparison(
        {"name": "StreamingNN exact (float32 screen, float64 decision; Table 3 default)", "value": min(ours_t), "unit": "s",
         "runs_s": ours_t, "error_pct": err,
         "float32": {"value": min(ours32_t), "runs_s": ours32_t, "error_pct": err32,
                     "ratio": min(alt_t) / min(ours32_t)}},
        {"name": "sklearn KNeighborsClassifier(n_neighbors=1, algorithm='brute'), float32 input",
         "value": min(alt_t), "unit": "s", "runs_s": alt_t, "error_pct": alt_err},
        "nn", device, higher_is_better=False,
        sizes={"n_refs": n_refs, "n_queries": n_queries, "dim": 784, "repeats": repeats},
        what=f"1-NN, {n_refs} references x {n_queries} queries x 784")
    # ours: float32 products screened, float64 deciding among the candidates (exact)
    rec["roofline"] = roofline(flops, min(ours_t), flops, min(alt_t), peak, "matmul")
    rec["roofline"]["ours_float32"] = roofline(flops, min(ours32_t), None, None, peak, "matmul")["ours"]
    return rec


def bench_generated_stream(device: torch.device, n_samples: int, n_queries: int, chunk: int,
                           generate_batch: int, peak: dict | None = None) -> dict:
    """Table 3's inner loop: mnist_cond (fresh weights) generates labelled samples in chunks
    and StreamingNN folds them in; throughput with generation included."""
    variant = MODELS.get("mnist_cond")
    torch.manual_seed(0)
    G = variant.build_generator().to(device)
    imgs, _ = class_images(n_queries, 1, 28, 10, seed=5)
    queries = _flat(imgs).to(device)
    nn = StreamingNN(queries, device=device)
    gen_s = 0.0
    sync(device)
    t0 = time.perf_counter()
    with progress(total=n_samples, desc="1-NN stream", unit="sample") as bar:
        for k, start in enumerate(range(0, n_samples, chunk)):
            m = min(chunk, n_samples - start)
            t, (x, y) = timed(lambda: generate(variant, G, m, seed=k, device=device,
                                               batch_size=generate_batch, uint8=False), device)
            gen_s += t
            nn.update(((x + 1) / 2).flatten(1), y)
            bar.update(m)
    nn.predict().cpu()
    seconds = time.perf_counter() - t0
    rate = n_samples / seconds
    # generation scales with the samples, the search with samples x queries
    projected = 10_000_000 / n_samples * (gen_s + (seconds - gen_s) * 10_000 / n_queries)
    t = NN_10M_TARGET_S.get(device.type)
    m = min(n_samples, generate_batch)
    gen_flops = count_flops(lambda: generate(variant, G, m, seed=0, device=device,
                                             batch_size=generate_batch, uint8=False))[0] * n_samples / m
    search_flops = 2.0 * n_samples * n_queries * 784
    roof = {"generation": roofline(gen_flops, gen_s, None, None, peak, "conv")["ours"],
            "search": roofline(search_flops, seconds - gen_s, None, None, peak, "matmul")["ours"]}
    return {"roofline": roof,
            "ours": {"name": "generate (mnist_cond) + StreamingNN (exact, float32 screen)", "value": rate,
                     "unit": "samples/s", "seconds": seconds, "generation_seconds": gen_s},
            "alternative": None, "ratio": None,
            "projected_10M_vs_10k_s": projected, "target": t,
            "target_met": None if t is None else bool(projected <= t),
            "sizes": {"n_samples": n_samples, "n_queries": n_queries, "chunk": chunk,
                      "generate_batch": generate_batch},
            "what": "Table 3 stream: N generated samples vs test queries (generation included); "
                    "projection to 10M x 10k: generation time x samples, search time x samples x queries"}
