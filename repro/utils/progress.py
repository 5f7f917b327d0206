"""One progress-bar factory, so every long loop shows rate and ETA the same way."""

from __future__ import annotations

import os
from typing import Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", disable: bool = False, **kwargs) -> tqdm:
    # REPRO_PROGRESS=0 silences bars (tests, CI logs); they still show in a terminal by default.
    disable = disable or os.environ.get("REPRO_PROGRESS", "1") == "0"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                dynamic_ncols=True, mininterval=1.0, **kwargs)
