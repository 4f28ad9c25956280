"""One registry per plugin kind: built-ins from one list, third parties from entry points.

Like pytest's plugin loading: a third-party plugin that fails to import is kept as *broken* with its
distribution and error (``bench-suite list`` shows it) and nothing else breaks; two plugins with the
same kind and name are an error naming both providers.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import importlib.metadata
import inspect
from typing import Any

from bench_suite.core.errors import BenchSuiteError, unknown_name_message

#: kind → entry-point group a third-party package declares its plugins under
ENTRY_POINT_GROUPS = {
    "neuron": "bench_suite.neurons",
    "norm": "bench_suite.norms",
    "trainer": "bench_suite.trainers",
    "dataset": "bench_suite.datasets",
    "model": "bench_suite.models",
}
KINDS = tuple(ENTRY_POINT_GROUPS)
BUILTIN_DISTRIBUTION = "bench-suite"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    obj: Any
    distribution: str
    version: str

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def params_cls(self) -> type | None:
        return getattr(self.obj, "Params", None)


@dataclasses.dataclass(frozen=True)
class BrokenPlugin:
    kind: str
    name: str
    distribution: str
    error: str


class Registry:
    def __init__(self) -> None:
        self._plugins: dict[str, dict[str, PluginInfo]] = {kind: {} for kind in KINDS}
        self.broken: list[BrokenPlugin] = []

    def register(self, kind: str, name: str, obj: Any, distribution: str, version: str = "") -> None:
        if kind not in self._plugins:
            raise BenchSuiteError(unknown_name_message("plugin kind", kind, KINDS))
        existing = self._plugins[kind].get(name)
        if existing is not None:
            raise BenchSuiteError(
                f"two {kind} plugins are named '{name}': one from '{existing.distribution}' and one from "
                f"'{distribution}'; uninstall one of them or ask its authors to rename it"
            )
        self._plugins[kind][name] = PluginInfo(kind, name, obj, distribution, version)

    def get(self, kind: str, name: str) -> PluginInfo:
        if kind not in self._plugins:
            raise BenchSuiteError(unknown_name_message("plugin kind", kind, KINDS))
        try:
            return self._plugins[kind][name]
        except KeyError:
            for broken in self.broken:
                if broken.kind == kind and broken.name == name:
                    raise BenchSuiteError(
                        f"{kind} '{name}' from '{broken.distribution}' is installed but broken "
                        f"({broken.error}); fix or reinstall that package"
                    ) from None
            raise BenchSuiteError(unknown_name_message(kind, name, self._plugins[kind])) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._plugins[kind])

    def list(self, kind: str | None = None, pattern: str = "*") -> list[PluginInfo]:
        kinds = KINDS if kind is None else (kind,)
        return [
            info
            for k in kinds
            for name, info in sorted(self._plugins[k].items())
            if fnmatch.fnmatch(name, pattern)
        ]


def _load_builtins(registry: Registry) -> None:
    from bench_suite import __version__
    from bench_suite.core.builtins import BUILTIN_PLUGINS

    for kind, name, target in BUILTIN_PLUGINS:
        module_name, attr = target.split(":")
        obj = getattr(importlib.import_module(module_name), attr)
        registry.register(kind, name, obj, BUILTIN_DISTRIBUTION, __version__)


def third_party_entry_points(group: str):
    """(entry point, distribution name, version) of every other package's entry point in ``group``."""
    for entry_point in importlib.metadata.entry_points(group=group):
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None else "unknown distribution"
        if dist_name != BUILTIN_DISTRIBUTION:
            yield entry_point, dist_name, dist.version if dist is not None else ""


def _load_entry_points(registry: Registry) -> None:
    for kind, group in ENTRY_POINT_GROUPS.items():
        for entry_point, dist_name, version in third_party_entry_points(group):
            try:
                obj = entry_point.load()
            except Exception as exc:  # any import failure of a third-party plugin is reported, not raised
                registry.broken.append(
                    BrokenPlugin(kind, entry_point.name, dist_name, f"{type(exc).__name__}: {exc}")
                )
                continue
            registry.register(kind, entry_point.name, obj, dist_name, version)


_REGISTRY: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, built on first use (importing every plugin once)."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        registry = Registry()
        _load_builtins(registry)
        _load_entry_points(registry)
        _REGISTRY = registry
    return _REGISTRY
