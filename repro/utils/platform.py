"""The platform fingerprint: what decides the last bits of a CPU float kernel.

Float kernels (MKL, oneDNN, OpenBLAS, torch's own vectorised loops) pick their code path from
the CPU's instruction set and split work by thread count, so the same seeded run is
bit-identical on one kind of machine and differs in the last bits on another. The drift gate
compares exactly only when the fingerprint matches its baseline's; provenance records it so
every result says where it was made.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

# ISA flags that change which kernels run (a superset is harmless; a missing one is not).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
             "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def _cpuinfo() -> tuple[str, list[str]]:
    """(model name, flags) from /proc/cpuinfo; ('unknown', []) where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return _platform.processor() or "unknown", []
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    return (model.group(1).strip() if model else _platform.machine() or "unknown",
            flags.group(1).split() if flags else [])


def _build_line(pattern: str) -> str:
    match = re.search(pattern, torch.__config__.show())
    return match.group(1).strip() if match else "unknown"


def _numpy_blas() -> str:
    try:
        import numpy as np

        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '?')}"
    except Exception:  # numpy's config layout differs across releases; this is a label only
        return "unknown"


@lru_cache(maxsize=None)
def fingerprint(threads: int | None = None) -> dict[str, Any]:
    """The facts that fix CPU float results: CPU model and ISA, torch build, BLAS, threads."""
    model, flags = _cpuinfo()
    return {
        "cpu_model": model,
        "machine": _platform.machine(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": _build_line(r"BLAS_INFO=([^,]+)"),
        "onednn": _build_line(r"MKL-DNN (v[\d.]+)"),
        "numpy_blas": _numpy_blas(),
        "threads": threads if threads is not None else torch.get_num_threads(),
    }


def fingerprint_id(fp: dict[str, Any]) -> str:
    """A short stable id of a fingerprint (equal ids: bit-identical runs expected)."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]
