"""Benchmarks of the hot paths against what a researcher would write or use instead (issue #7).

`python -m repro.bench [--quick] [--only NAME] [--out results/bench.json]`; see `repro.bench.cli`.
Every benchmark measures ours and the alternative in the same process, alternating repeats,
and records the ratio (these machines are noisy), its target and whether it was met.
"""
