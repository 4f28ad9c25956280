"""One registry per plugin kind: built-ins from one list, third parties from entry points.

Like pytest's plugin loading: a plugin that fails to import, or whose class breaks its kind's contract
(:func:`bench_suite.core.contracts.contract_problems`), is kept as *broken* with its distribution and the
reason (``bench-suite list`` shows it) and nothing else breaks. Two plugins of one kind and name disable
that name alone: using it is an error naming both packages; every other plugin works.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import importlib.metadata
import inspect
from typing import Any

from bench_suite.core.contracts import contract_problems
from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.requirements import MissingDependency

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
        #: (kind, name) → every plugin that claims it; such a name is disabled
        self.clashes: dict[tuple[str, str], list[PluginInfo]] = {}

    def register(self, kind: str, name: str, obj: Any, distribution: str, version: str = "") -> bool:
        """Add a plugin; False (and the reason kept in ``broken`` or ``clashes``) where it cannot be used."""
        if kind not in self._plugins:
            raise BenchSuiteError(unknown_name_message("plugin kind", kind, KINDS))
        problems = contract_problems(kind, obj)
        if problems:
            self.broken.append(BrokenPlugin(
                kind, name, distribution, f"breaks the {kind} contract: {'; '.join(problems)} "
                "(see bench_suite.core.contracts)"))
            return False
        info = PluginInfo(kind, name, obj, distribution, version)
        if (kind, name) in self.clashes:
            self.clashes[(kind, name)].append(info)
            return False
        existing = self._plugins[kind].pop(name, None)
        if existing is not None:
            self.clashes[(kind, name)] = [existing, info]
            return False
        self._plugins[kind][name] = info
        return True

    def clash_message(self, kind: str, name: str) -> str:
        providers = " and ".join(f"'{info.distribution}'" for info in self.clashes[(kind, name)])
        return (f"two {kind} plugins are named '{name}' (from {providers}), so '{name}' is disabled; "
                "uninstall one of the packages or ask its authors to rename the plugin")

    def get(self, kind: str, name: str) -> PluginInfo:
        if kind not in self._plugins:
            raise BenchSuiteError(unknown_name_message("plugin kind", kind, KINDS))
        try:
            return self._plugins[kind][name]
        except KeyError:
            if (kind, name) in self.clashes:
                raise BenchSuiteError(self.clash_message(kind, name)) from None
            for broken in self.broken:
                if broken.kind == kind and broken.name == name:
                    raise BenchSuiteError(
                        f"{kind} '{name}' from '{broken.distribution}' is installed but cannot be used: "
                        f"{broken.error}"
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
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except MissingDependency as missing:
            # e.g. SpikingJelly absent: the neurons are listed as unusable, datasets and reports still work
            registry.broken.append(BrokenPlugin(kind, name, BUILTIN_DISTRIBUTION, str(missing)))
            continue
        if not registry.register(kind, name, obj, BUILTIN_DISTRIBUTION, __version__):
            problem = next(b.error for b in registry.broken if (b.kind, b.name) == (kind, name))
            raise RuntimeError(f"built-in {kind} '{name}' {problem}")  # our own bug: fail loudly


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
