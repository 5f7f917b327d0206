"""One registry for datasets, model variants and evaluators.

Items register themselves by name with a decorator in their own module; `get` imports the
modules that hold registrations on first use, so importing `repro.registry` itself runs nothing.
A provider `pkg.*` is every public module of that package: a new dataset, variant or evaluator
is one new module there (plus the config that uses it), with no list to edit.
An unknown name raises a ReproError that lists the valid names.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Iterator

from repro.errors import ReproError

# kind -> modules whose import registers the items of that kind (`pkg.*`: all of pkg's modules;
# repro.utils.imports counts them as code deps of every stage that reads the registry)
_PROVIDERS = {
    "dataset": ("repro.data.*",),
    "model": ("repro.models.*",),
    "evaluator": ("repro.eval.*",),
}


def provider_modules(spec: str) -> list[str]:
    """'pkg.mod' -> ['pkg.mod']; 'pkg.*' -> every module of pkg whose name has no leading '_'."""
    if not spec.endswith(".*"):
        return [spec]
    package = importlib.import_module(spec[:-2])
    return [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
            if not m.name.startswith("_")]


class Registry:
    """Name -> object map for one kind of component. `providers`: the modules that register
    its items, for a registry kept outside this module (the tables', in repro.tables, so that
    only the stages that read tables count them as code deps); default: `_PROVIDERS[kind]`."""

    def __init__(self, kind: str, providers: tuple[str, ...] | None = None):
        self.kind = kind
        self.providers = _PROVIDERS.get(kind, ()) if providers is None else providers
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
            for spec in self.providers:
                for module in provider_modules(spec):
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
EVALUATORS = Registry("evaluator")
