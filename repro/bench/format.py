"""Render results/bench.json as Markdown (the report embeds `bench_markdown(path)`)."""

from __future__ import annotations

from pathlib import Path

from repro.utils.io import read_json


def _n(x, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _sizes(s: dict) -> str:
    def value(v):  # a list (a C grid) as its length and range: the table stays narrow
        if isinstance(v, list) and len(v) > 2:
            return f"{len(v)} values {min(v):g}..{max(v):g}"
        return v
    return ", ".join(f"{k}={value(v)}" for k, v in s.items() if k not in ("repeats",))


def _cell(side: dict | None) -> str:
    if not side:
        return "—"
    return f"{_n(side['value'])} {side.get('unit', '')}".strip()


def _fraction(r: dict) -> str:
    """'ours / alternative' fraction of the measured peak, in percent."""
    roof = r.get("roofline") or {}
    if "generation" in roof:  # the stream: generation and search separately
        parts = [f"{k} {_pct(roof[k])}" for k in ("generation", "search")]
        return ", ".join(parts)
    if "ours" not in roof:
        return "—"
    alt = roof.get("alternative")
    return f"{_pct(roof['ours'])} / {_pct(alt) if alt else '—'} of {roof.get('kind', '')}"


def _pct(side: dict) -> str:
    return _pct_of(side.get("fraction_of_peak"))


def _pct_of(fraction: float | None) -> str:
    return "—" if fraction is None else f"{100 * fraction:.0f} %"


def bench_markdown(path: str | Path) -> str:
    """A Markdown section: the machine, then one row per benchmark (ours, alternative, ratio,
    target, met), then the accuracy checks."""
    b = read_json(path)
    lines = [f"Benchmarks on **{b.get('device_name')}** ({b.get('device')}, torch {b.get('torch')}, "
             f"{b.get('threads')} CPU threads{', quick sizes' if b.get('quick') else ''}; "
             f"{_n(b.get('wall_time_s'))} s in all). Ratio = speed-up of ours over the "
             "alternative; both measured in the same run, interleaved (training: median of the "
             "repeats; others: best).", ""]
    peak = b.get("peak")
    if peak:
        lines += [f"Peak measured at the start of the run: fp32 matmul "
                  f"{_n(peak.get('matmul_fp32_gflops'))} GFLOP/s, fp32 conv "
                  f"{_n(peak.get('conv_fp32_gflops'))} GFLOP/s, memory copy "
                  f"{_n(peak.get('memory_gbps'))} GB/s ({peak.get('method', '')}). "
                  "'of peak' = counted matmul/conv FLOPs per second over that peak "
                  "(ours / alternative).", ""]
        end = b.get("peak_end") or {}
        if end.get("conv_fp32_gflops") and peak.get("conv_fp32_gflops"):
            lines += [f"Measured again at the end: fp32 matmul {_n(end.get('matmul_fp32_gflops'))} "
                      f"GFLOP/s, fp32 conv {_n(end.get('conv_fp32_gflops'))} GFLOP/s "
                      f"({_n(end['conv_fp32_gflops'] / peak['conv_fp32_gflops'])}x the start's "
                      "conv peak): the fractions of peak are uncertain by that much.", ""]
    lines += ["| benchmark | sizes | ours | alternative | ratio | target | met | of peak |",
              "|---|---|---|---|---|---|---|---|"]
    checks = []
    for name, r in b.get("benchmarks", {}).items():
        if "error" in r:
            lines.append(f"| {name} | — | failed: {r['error']} | — | — | — | — | — |")
            continue
        ratio = r.get("ratio")
        extra = ""
        if "projected_10M_vs_10k_s" in r:
            extra = f" (projected 10M x 10k: {_n(r['projected_10M_vs_10k_s'])} s)"
        alt_extra = ""
        if (r.get("alternative") or {}).get("projected_10M_vs_10k_s") is not None:
            alt_extra = f" (projected: {_n(r['alternative']['projected_10M_vs_10k_s'])} s)"
        if r.get("per_fit_target_s") is not None:
            extra += (f" (target ≤ {r['per_fit_target_s']:g} s per fit: "
                      f"{'met' if r.get('per_fit_target_met') else 'not met'})")
        tgt = r.get("target")
        tgt_s = "—" if tgt is None else (f"≤ {tgt:g} s" if "projected_10M_vs_10k_s" in r else f"≥ {tgt:g}x")
        lines.append(f"| {name} | {_sizes(r.get('sizes', {}))} | {_cell(r.get('ours'))}{extra} | "
                     f"{_cell(r.get('alternative'))}{alt_extra} | {_n(ratio) + 'x' if ratio else '—'} | "
                     f"{tgt_s} | {_n(r.get('target_met'))} | {_fraction(r)} |")
        if "accuracy_diff_pp" in r:
            checks.append(f"- {name}: accuracy ours {_n(100 * r['ours']['accuracy'], 4)} %, "
                          f"LinearSVC {_n(100 * r['alternative']['accuracy'], 4)} % "
                          f"(difference {_n(r['accuracy_diff_pp'])} pp; within 0.5 pp: "
                          f"{_n(r['accuracy_within_0_5pp'])})")
        default = (r.get("ours") or {}).get("default")
        if default:
            checks.append(f"- {name}: the default path ({default['name']}): "
                          f"{_n(default['value'])} {r['ours'].get('unit', '')}, "
                          f"{_n(default['ratio'])}x the alternative")
        if r.get("projected_ratio") is not None:
            gpu = r.get("gpu_projection") or {}
            checks.append(f"- {name}: projected 10M x 10k {_n(r['projected_ratio'])}x faster than "
                          f"the default path (generation {_n(r.get('generation_ratio'))}x); "
                          f"samples bit-identical: {_n(r.get('samples_bit_identical'))} (max "
                          f"difference {_n(r.get('samples_max_abs_difference'))}). GPU "
                          f"{gpu.get('label', '')}: "
                          f"{_n(gpu.get('generation_bf16_search_fp32_s'))} s (bf16 generation) / "
                          f"{_n(gpu.get('generation_fp32_search_fp32_s'))} s (fp32) on one H200: "
                          f"{gpu.get('arithmetic', '')}")
        lim = r.get("limit")
        if lim:
            checks.append(f"- {name}: {_n(100 * lim['conv_share_of_step'], 3)} % of our step is "
                          f"convolution kernels, running at {_n(lim['conv_kernels_gflops'])} GFLOP/s "
                          f"({_pct_of(lim.get('conv_kernels_fraction_of_peak'))} "
                          f"of the conv peak); with everything else at zero time the ratio "
                          f"would be {_n(lim['ratio_ceiling'])}x; our FLOP saving alone, "
                          f"at the tutorial loop's kernel speed, gives {_n(lim.get('flop_ratio'))}x")
        lay = r.get("layouts")
        if lay:
            slow = [x for x in lay["layers"] if x["best"].get("fraction_of_peak") is not None]
            low = min(slow, key=lambda x: x["best"]["fraction_of_peak"]) if slow else None
            checks.append(f"- {name}: per-layer layout: channels_last throughout is "
                          f"{_n(lay['channels_last_speedup_vs_nchw'])}x NCHW on the step's convs; "
                          f"the faster layout for each layer would add "
                          f"{_n(lay['best_per_layer_speedup_vs_channels_last'])}x"
                          + (f" (slowest: {low['layer']} at "
                             f"{_pct_of(low['best']['fraction_of_peak'])} of the conv peak)" if low else ""))
        if r.get("ours", {}).get("error_pct") is not None and r.get("alternative"):
            checks.append(f"- {name}: 1-NN error ours {_n(r['ours']['error_pct'], 4)} %, "
                          f"sklearn {_n(r['alternative']['error_pct'], 4)} %")
    if checks:
        lines += ["", "Agreement:", *checks]
    return "\n".join(lines) + "\n"


def _gpu_step_figure(name: str, r: dict) -> str:
    """The one figure a GPU-check step row shows."""
    if name == "peak":
        return (f"fp32 matmul {_n(r.get('matmul_fp32_gflops'))} GFLOP/s, fp32 conv "
                f"{_n(r.get('conv_fp32_gflops'))} GFLOP/s, copy {_n(r.get('memory_gbps'))} GB/s")
    if name.startswith("train/"):
        plain = r.get("ours_plain") or {}
        return (f"ours {_cell(r.get('ours'))} (fast path), {_cell(plain)} fp32 NCHW "
                f"({_n(plain.get('fast_path_speedup'))}x), tutorial loop {_cell(r.get('alternative'))} "
                f"({_n(r.get('ratio'))}x)")
    if name == "svm":
        full, sub = r.get("full", {}), r.get("vs_linearsvc_subset", {})
        return (f"L2SVM {full.get('n_train')} x 28672 in {_n(full.get('seconds'))} s; "
                f"{_n(sub.get('ratio'))}x LinearSVC on {r.get('subset')} rows")
    if name == "nn_stream":
        return f"projected 10M x 10k: {_n(r.get('projected_10M_vs_10k_s'))} s"
    if name == "features":
        return f"{_cell(r.get('ours'))}, {_n(r.get('ratio'))}x the DataLoader loop"
    if name == "ddp":
        return f"{r.get('backend')}, {r.get('wrapper')}, {_n(r.get('images_per_second'))} img/s"
    if name == "dry_run":
        return f"{len(r.get('outputs', []))} outputs of {', '.join(r.get('targets', []))}"
    return ""


def gpu_check_markdown(path: str | Path) -> str:
    """A Markdown section for results/bench_gpu.json (`python -m repro.bench --gpu`): each
    step's status and figure, then the projected GPU-hours of the paper profile."""
    b = read_json(path)
    small = b.get("small_mode")
    lines = [f"The GPU check on **{b.get('device_name')}** (torch {b.get('torch')}, CUDA "
             f"{b.get('cuda')}; {_n(b.get('wall_time_s'))} s of a {_n(b.get('budget_s'))} s "
             "budget)" + ("; CPU small mode: sizes far below the paper's, the figures only "
                          "exercise the code path" if small else "") + ".", "",
             "| step | status | seconds | figure |", "|---|---|---|---|"]
    order = ("peak", "train/", "svm", "nn_stream", "features", "ddp", "dry_run")  # the run's
    rank = lambda name: next((i for i, o in enumerate(order) if name.startswith(o)), len(order))  # noqa: E731
    for name, r in sorted(b.get("steps", {}).items(), key=lambda kv: (rank(kv[0]), kv[0])):
        status = next((f"{k}: {r[k]}" for k in ("skipped", "error", "running") if k in r), "ok")
        figure = _gpu_step_figure(name, r) if status == "ok" else "—"
        lines.append(f"| {name} | {status} | {_n(r.get('step_seconds'))} | {figure} |")
    proj = b.get("projection") or {}
    if proj.get("train"):
        lines += ["", f"Projected GPU-hours of the {proj.get('profile')} profile's training "
                  "(epochs x images per epoch x seeds / the measured images/s):", "",
                  "| stage | variant | dataset | images/epoch | epochs | seeds | img/s | GPU-hours |",
                  "|---|---|---|---|---|---|---|---|"]
        for stage, t in proj["train"].items():
            lines.append(f"| {stage} | {t['variant']} | {t['dataset']} | {t['images_per_epoch']:,} | "
                         f"{t['epochs']} | {t['seeds']} | {_n(t.get('images_per_second'))} | "
                         f"{_n(t.get('gpu_hours')) if t.get('gpu_hours') is not None else t.get('why', '—')} |")
        lines += ["", f"In all: {_n(proj.get('train_gpu_hours_total'))} GPU-hours of training; "
                  f"Table 3's 10M x 10k stream {_n(proj.get('table3_stream_10M_x_10k_s'))} s; "
                  f"the L2-SVM on 50,000 x 28,672 {_n(proj.get('l2svm_50000x28672_s'))} s "
                  f"({proj.get('l2svm_basis', 'not measured')}); feature extraction "
                  f"{_n(proj.get('features_s_per_100k_images'))} s per 100,000 images."]
    return "\n".join(lines) + "\n"
