"""A venv holding only the lent GPU machine's Python packages (tests/test_gpu_check_device.py).

The lent machine's image has the packages in LENT (the device tool's KINDS.md, as read on
2026-11-17) and nothing else: not pydantic, dvc, dvclive, reportlab or mlxtend. Installing
torch again costs gigabytes, so the venv links those of LENT installed here from the running
interpreter's site-packages; the project's optional packages are then truly absent in it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

LENT = set("""
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub
    humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
    jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning
    lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
    markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
    multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy
    numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
    nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver
    nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink
    nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
    opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
    packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
    propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks
    pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
    pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
    safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels
    sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
    tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
    torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect
    urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
# What the lent machine lacks and the check needs (tools/gpu_check_wheels.txt carries them)
OPTIONAL = ("pydantic", "dvc", "dvclive", "reportlab", "mlxtend")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _entries(dist: metadata.Distribution) -> set[str]:
    """The site-packages entries a distribution installed (packages, modules, .libs, .dist-info)."""
    parts = (Path(str(f)).parts for f in dist.files or [])
    return {p[0] for p in parts if p and p[0] not in ("..", "__pycache__")}


def make(dest: Path) -> Path:
    """A venv at `dest` (with pip) whose site-packages links only LENT's installed
    distributions; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(dest)], check=True)
    python = dest / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    lent = {_norm(n) for n in LENT} - {"pip", "setuptools", "wheel"}  # the venv's own
    for dist in metadata.distributions():
        if _norm(dist.metadata["Name"]) not in lent:
            continue
        base = Path(str(dist.locate_file("")))
        for entry in _entries(dist):
            src, link = base / entry, site / entry
            if src.exists() and not link.exists():
                link.symlink_to(src)
    return python
