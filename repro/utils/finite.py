"""Finding NaN/inf in JSON-bound values: measured numbers must be finite (or null)."""

from __future__ import annotations

import math
import numbers
from typing import Any


def nonfinite(obj: Any, where: str = "") -> list[str]:
    """`where`-prefixed paths (`runs[1]`, `protocol.x`) of the NaN/inf numbers inside `obj`."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in nonfinite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in nonfinite(v, f"{where}[{i}]")]
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):
        return [] if math.isfinite(float(obj)) else [f"{where or '(value)'} = {float(obj)}"]
    return []
