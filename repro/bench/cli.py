"""`python -m repro.bench`: run the benchmarks, write results/bench.json.

    python -m repro.bench --quick                 # small sizes, a few minutes on a CPU
    python -m repro.bench                         # the device's full sizes (see SIZES)
    python -m repro.bench --only train,svm --out results/bench.json
    python -m repro.bench --gpu                   # the GPU check -> results/bench_gpu.json
                                                  # (repro.bench.gpu; small mode on a CPU)

Names for --only: train (or train/<variant>), svm, probe, nn, stream, features (probe: the
Table 1/2 probe path, a C grid of 1,000-label fits on one draw, 7,168-d and 28,672-d).
With --only the results are merged into an existing file of the same device and size mode
(other entries kept); a file of another device or mode is refused before anything runs.
Sizes: SIZES[quick|cpu|cuda]; each can be overridden by a flag. The issue's sizes (SVM on 10k
and 50k x 28672, 1-NN 50k x 10k, features on 50k) are the CUDA defaults; on a CPU the full
run uses what finishes in minutes, and bench.json records what ran.
"""

from __future__ import annotations

import argparse
import platform
import time
import traceback
from pathlib import Path

import torch

from repro.errors import ReproError, cli_errors
from repro.utils.device import describe, resolve_device
from repro.utils.io import read_json, write_json
from repro.utils.provenance import git_revision

VARIANTS = ["svhn32", "imagenet32", "mnist_cond", "lsun64_small"]
# the paper profiles' batch sizes (experiments/paper.yaml); lsun64_small as lsun64
PAPER_BATCH = {"svhn32": 64, "imagenet32": 128, "mnist_cond": 128, "lsun64_small": 128, "lsun64": 128}
NAMES = ("train", "svm", "probe", "nn", "stream", "features")

SIZES = {
    # train_repeats: interleaved (ours, tutorial) pairs whose medians give the training ratio;
    # one pair is noise on a shared machine, three give a median
    "quick": dict(train_batch=32, train_steps=4, train_warmup=2, repeats=1, train_repeats=3,
                  svm_n=[500], svm_test=500,
                  # the probe fit at its target sizes: 1,000 labels, both feature widths
                  probe_dims=[7168, 28672], probe_n=1000, probe_alt_C=[1e-3],
                  nn_refs=5000, nn_queries=1000, stream_samples=5000,
                  # the stream at the projection's 10k queries: only samples are extrapolated
                  stream_queries=10000, features_n=1000, features_repeats=2, stream_repeats=2),
    "cpu": dict(train_batch=None, train_steps=12, train_warmup=3, repeats=2, svm_n=[5000],
                svm_test=2000, probe_dims=[7168, 28672], probe_n=1000,
                probe_alt_C=[1e-4, 1e-3, 1e-2], nn_refs=50000, nn_queries=10000,
                stream_samples=20000, stream_queries=10000, features_n=10000,
                features_repeats=2, stream_repeats=1),
    "cuda": dict(train_batch=None, train_steps=200, train_warmup=20, repeats=2,
                 svm_n=[10000, 50000], svm_test=10000, probe_dims=[7168, 28672], probe_n=1000,
                 probe_alt_C=[1e-3], nn_refs=50000, nn_queries=10000,
                 stream_samples=1_000_000, stream_queries=10000, features_n=50000,
                 features_repeats=2, stream_repeats=1),
}


def _selected(only: str | None) -> tuple[set[str], list[str] | None]:
    if not only:
        return set(NAMES), None
    names, variants = set(), []
    for item in only.split(","):
        head, _, tail = item.strip().partition("/")
        if head not in NAMES:
            raise ReproError(f"unknown benchmark {item!r}; valid names: {', '.join(NAMES)} "
                             "(or train/<variant>)")
        names.add(head)
        if head == "train" and tail:
            variants.append(tail)
    return names, variants or None


def _merge_target(path: Path, device: str, quick: bool) -> dict | None:
    """The existing file an --only run merges into; refused before any benchmark runs when it
    holds another device's or size mode's figures (writing over it would drop its entries)."""
    if not path.exists():
        return None
    old = read_json(path)
    if old.get("device") != device or bool(old.get("quick")) != quick:
        raise ReproError(f"--only merges into {path}, but it holds device={old.get('device')!r} "
                         f"quick={old.get('quick')!r} figures and this run is device={device!r} "
                         f"quick={quick}; pass another --out, or match --quick / --device")
    return old


def run(args: argparse.Namespace) -> dict:
    from repro.bench.common import train_fast_path
    from repro.bench.features import bench_bn_stats, bench_features
    from repro.bench.nn import bench_generated_stream, bench_nn
    from repro.bench.probe_fit import bench_probe_fit
    from repro.bench.roofline import measure_peak
    from repro.bench.svm import bench_svm, svm_data
    from repro.bench.train import bench_train

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = dict(SIZES["quick" if args.quick else device.type])
    for key in sizes:
        val = getattr(args, key, None)
        if val is not None:
            sizes[key] = val
    if args.repeats is not None:
        sizes["train_repeats"] = args.repeats
    names, only_variants = _selected(args.only)
    path = Path(args.out)
    old = _merge_target(path, device.type, bool(args.quick)) if args.only else None
    fast = {} if args.no_fast else train_fast_path(device)
    if args.compile:
        fast["compile"] = True
    ref_workers = args.ref_workers if args.ref_workers is not None else (2 if device.type == "cuda" else 0)
    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    print("[bench] peak ...", flush=True)
    peak_size = "quick" if args.quick else device.type
    peak = measure_peak(device, peak_size)
    print(f"[bench] peak: matmul {peak['matmul_fp32_gflops']:.0f} GFLOP/s, conv "
          f"{peak['conv_fp32_gflops']:.0f} GFLOP/s, copy {peak['memory_gbps']:.1f} GB/s", flush=True)

    def record(name: str, fn) -> None:
        print(f"[bench] {name} ...", flush=True)
        t = time.perf_counter()
        try:
            results[name] = fn()
        except ReproError:
            raise
        except Exception as e:  # one failing benchmark must not lose the others' numbers
            traceback.print_exc()
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        results[name]["bench_seconds"] = round(time.perf_counter() - t, 2)
        r = results[name]
        print(f"[bench] {name}: ratio {r.get('ratio')}, target {r.get('target')}, "
              f"met {r.get('target_met')} ({r['bench_seconds']} s)", flush=True)

    if "train" in names:
        for v in only_variants or args.variants or VARIANTS:
            batch = sizes["train_batch"] or PAPER_BATCH.get(v, 128)
            record(f"train/{v}", lambda v=v, batch=batch: bench_train(
                v, device, batch, sizes["train_steps"], sizes["train_warmup"],
                sizes.get("train_repeats") or sizes["repeats"],
                ref_workers, fast, peak=peak))
    if "svm" in names:
        for n in sizes["svm_n"]:
            data = {}

            def svm(n=n):
                data["xy"] = svm_data(device, n, sizes["svm_test"])
                return bench_svm(device, n, sizes["svm_test"], args.svm_C, args.svm_tol,
                                 1 if n > 10000 else sizes["repeats"], data=data["xy"],
                                 peak=peak)
            record(f"svm/{n}x28672", svm)
    if "probe" in names:
        for dim in sizes["probe_dims"]:
            record(f"probe_fit/{sizes['probe_n']}x{dim}",
                   lambda dim=dim: bench_probe_fit(device, dim, sizes["probe_n"], sizes["probe_n"],
                                                   alt_Cs=sizes["probe_alt_C"], tol=args.svm_tol,
                                                   repeats=sizes["repeats"], peak=peak))
    if "nn" in names:
        record(f"nn/{sizes['nn_refs']}x{sizes['nn_queries']}x784",
               lambda: bench_nn(device, sizes["nn_refs"], sizes["nn_queries"], sizes["repeats"],
                                peak=peak))
    if "stream" in names:
        record(f"nn_stream/{sizes['stream_samples']}x{sizes['stream_queries']}",
               lambda: bench_generated_stream(device, sizes["stream_samples"],
                                              sizes["stream_queries"], chunk=args.stream_chunk,
                                              generate_batch=args.generate_batch, peak=peak,
                                              repeats=sizes["stream_repeats"]))
    if "features" in names:
        record(f"features/imagenet32/{sizes['features_n']}",
               lambda: bench_features(device, sizes["features_n"], 256, sizes["features_repeats"],
                                      peak=peak))
        record(f"bn_stats/imagenet32/{sizes['features_n']}",
               lambda: bench_bn_stats(device, sizes["features_n"], sizes["features_repeats"],
                                      peak=peak))

    # Measured again at the end: on a shared machine the peak itself moves, and each
    # fraction of peak above is uncertain by as much as the two measurements differ.
    peak_end = measure_peak(device, peak_size)
    out = {"device": device.type, "device_name": describe(device) if device.type == "cuda"
           else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cuda": torch.version.cuda if device.type == "cuda" else None,
           "git": git_revision(), "quick": bool(args.quick), "sizes": sizes,
           "fast_path": fast, "reference_num_workers": ref_workers,
           "wall_time_s": round(time.perf_counter() - t0, 2), "peak": peak,
           "peak_end": peak_end, "benchmarks": results}
    if old is not None:
        # Each entry keeps the peak it was measured against in its own `roofline`.
        out["benchmarks"] = {**old.get("benchmarks", {}), **results}
    write_json(path, out)
    return out


@cli_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None,
                    help="default: results/bench.json (results/bench_gpu.json with --gpu)")
    ap.add_argument("--gpu", action="store_true",
                    help="the GPU check (repro.bench.gpu; on the lent machine through "
                         "tools/gpu_check.sh): GPU benchmarks + paper dry run; on a CPU a small "
                         "mode of the same steps")
    ap.add_argument("--budget-s", dest="budget_s", type=float, default=300.0,
                    help="--gpu: every step ends inside this many seconds (each also has its "
                         "own time box, repro.bench.gpu.BOXES)")
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes on a CPU)")
    ap.add_argument("--only", default=None, help=f"comma list of {', '.join(NAMES)}, train/<variant>")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--variants", nargs="+", default=None, help=f"default: {' '.join(VARIANTS)}")
    ap.add_argument("--train-batch", dest="train_batch", type=int, default=None,
                    help="default: each variant's paper batch size (quick: 32)")
    ap.add_argument("--train-steps", dest="train_steps", type=int, default=None)
    ap.add_argument("--train-warmup", dest="train_warmup", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--svm-n", dest="svm_n", type=int, nargs="+", default=None)
    ap.add_argument("--svm-test", dest="svm_test", type=int, default=None)
    ap.add_argument("--svm-C", dest="svm_C", type=float, default=0.01)
    ap.add_argument("--svm-tol", dest="svm_tol", type=float, default=1e-4)
    ap.add_argument("--probe-dims", dest="probe_dims", type=int, nargs="+", default=None,
                    choices=[7168, 28672], help="probe-fit feature widths (default: both)")
    ap.add_argument("--probe-n", dest="probe_n", type=int, default=None,
                    help="probe-fit labels (and test rows); default 1000, Table 2's draw")
    ap.add_argument("--probe-alt-C", dest="probe_alt_C", type=float, nargs="+", default=None,
                    help="C values LinearSVC is fitted at in the probe-fit benchmark")
    ap.add_argument("--nn-refs", dest="nn_refs", type=int, default=None)
    ap.add_argument("--nn-queries", dest="nn_queries", type=int, default=None)
    ap.add_argument("--stream-samples", dest="stream_samples", type=int, default=None)
    ap.add_argument("--stream-queries", dest="stream_queries", type=int, default=None)
    ap.add_argument("--stream-chunk", dest="stream_chunk", type=int, default=100_000)
    ap.add_argument("--generate-batch", dest="generate_batch", type=int, default=5000)
    ap.add_argument("--features-n", dest="features_n", type=int, default=None)
    ap.add_argument("--ref-workers", dest="ref_workers", type=int, default=None,
                    help="the reference loop's DataLoader workers (default: 2 on CUDA as in the "
                         "PyTorch DCGAN tutorial, 0 on CPU)")
    ap.add_argument("--no-fast", dest="no_fast", action="store_true",
                    help="train without the fast path (channels_last; + bf16 on CUDA)")
    ap.add_argument("--compile", action="store_true", help="torch.compile in our trainer")
    args = ap.parse_args(argv)
    if args.gpu:
        from repro.bench.gpu import run_gpu

        if args.threads:
            torch.set_num_threads(args.threads)
        path = Path(args.out or "results/bench_gpu.json")
        rec = run_gpu(resolve_device(args.device), path, args.budget_s, repo=Path.cwd())
        failed = [k for k, v in rec["steps"].items() if "error" in v]
        print(f"[bench --gpu] wrote {path} ({rec['wall_time_s']} s)", flush=True)
        if failed:
            raise ReproError(f"GPU check step(s) failed: {', '.join(failed)}; see {path}")
        return
    args.out = args.out or "results/bench.json"
    out = run(args)
    from repro.bench.format import bench_markdown

    print(bench_markdown(args.out))
    failed = [k for k, v in out["benchmarks"].items() if "error" in v]
    if failed:
        raise ReproError(f"benchmark(s) failed: {', '.join(failed)}; see the traceback above")


if __name__ == "__main__":
    main()
