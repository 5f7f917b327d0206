"""Reading user-supplied pickles without running their code.

A pickle names the globals it calls; `pickle.load` imports and calls whatever it names
(`os.system` included). `RestrictedUnpickler` resolves only an allow-list, so a file that
needs anything else is refused before any of it is called. `load_arrays` admits what a pickled
dict/list of numpy arrays needs, under numpy 1 and numpy 2 module names alike.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from repro.errors import ReproError


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle needs a global outside the allow-list."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals `resolve` allows; anything else raises RefusedGlobal.

    Subclasses extend `ALLOWED` ((module, name) -> object) or override `resolve`.
    """

    ALLOWED: dict[tuple[str, str], Any] = {}

    def resolve(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def find_class(self, module: str, name: str) -> Any:
        return self.resolve(module, name)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # numpy 2 pickles name numpy._core, numpy 1 pickles numpy.core: both map to the installed
    # functions (taken from whichever module exists, without numpy.core's deprecation shim).
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    out: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):  # protocol-5 pickles of arrays
            out[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    out[("numpy", "ndarray")] = np.ndarray
    out[("numpy", "dtype")] = np.dtype
    # Plain containers, under Python 3 and Python 2 names; `_codecs.encode` is how protocol-2
    # pickles written by Python 3 carry bytes (numpy's array payloads).
    for builtins in ("builtins", "__builtin__"):
        for obj in (dict, list, tuple, set, frozenset, bytearray, bytes, str, int, float,
                    complex, bool, slice, range):
            out[(builtins, obj.__name__)] = obj
    import codecs
    out[("_codecs", "encode")] = codecs.encode
    return out


class ArrayUnpickler(RestrictedUnpickler):
    """numpy arrays, dtypes and scalars in plain containers; nothing else."""

    ALLOWED = _numpy_globals()


def load_arrays(source: str | Path | BinaryIO, encoding: str = "latin1") -> Any:
    """Unpickle a file of numpy arrays in plain containers (dict, list, ...).

    A file that needs any other global is refused with a ReproError naming it; nothing it
    names is imported or called. Other read errors (truncated file, ...) propagate as the
    usual pickle/OS exceptions for the caller to word.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return load_arrays(handle, encoding)
    try:
        return ArrayUnpickler(source, encoding=encoding).load()
    except RefusedGlobal as err:
        name = getattr(source, "name", "the pickle")
        raise ReproError(f"{name} holds objects other than numpy arrays and plain containers "
                         f"(it needs {err.qualname}) and will not be loaded; use the official "
                         "file or convert it to .npz") from None
