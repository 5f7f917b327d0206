"""One registry for datasets and model variants.

Items register themselves by name with a decorator in their own module; `get` imports the
modules that hold registrations on first use, so importing `repro.registry` itself runs nothing.
An unknown name raises a ReproError that lists the valid names.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterator

from repro.errors import ReproError

# kind -> modules whose import registers the items of that kind
_PROVIDERS = {
    "dataset": ("repro.data.real", "repro.data.synthetic"),
    "model": ("repro.models.zoo",),
}


class Registry:
    """Name -> object map for one kind of component."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._items and self._items[name] is not obj:
                raise ReproError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in _PROVIDERS.get(self.kind, ()):
                importlib.import_module(module)

    def get(self, name: str) -> Any:
        self._load()
        if name not in self._items:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise ReproError(f"unknown {self.kind} {name!r}; valid names: {valid}")
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items


DATASETS = Registry("dataset")
MODELS = Registry("model")
