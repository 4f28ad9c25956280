"""Suites: named experiments (one paper table each) declared as TOML files.

A suite file says *what* to run (one or more ``[[grid]]`` blocks of plugins × datasets × time steps, so a
table that is a union of grids, e.g. "the ANN once, plus MT × FT at each dataset's T", can be written
down as it is), *how much* of it per profile (``[profiles.smoke]`` etc.: demo data and tiny settings
instead of the real datasets), and *how to show it* (``[table]``: rows, columns, metrics, baseline, and
the ``[[published]]`` values of the paper to put beside the measured ones).

Built-in suites live in ``bench_suite/suites/<group>/<name>.toml`` (a data folder, not a package, read
through :mod:`importlib.resources`); the suite name is the path without ``.toml``. A third-party package
ships suites by declaring an entry point in the group ``bench_suite.suites`` whose object is a folder
(an ``importlib.resources`` Traversable, a ``pathlib.Path`` or a path string) of such TOML files, e.g.::

    [project.entry-points."bench_suite.suites"]
    my-suites = "my_package:SUITES"      # SUITES = importlib.resources.files("my_package") / "suites"

File format (every key is checked; an unknown key is an error naming the file and the key)::

    description = "..."
    [reproduces]            paper = "...", table = "..."
    [defaults]              plugins, datasets, time_steps, seeds, folds   (optional, for every grid)
    [[grid]]                name, plugins = ["trainer=asf", "neuron=mt", ...], datasets = ["drive"],
                            time_steps = [10], seeds = [0], folds = 5
    [grid.profiles.smoke]   any of plugins, datasets, time_steps, seeds, folds; skip = true
    [profiles.smoke]        any of plugins, datasets, time_steps, seeds, folds; overrides = {...}
    [table]                 rows, columns, metrics, baseline, caption, label_separator,
                            lower_is_better, stats = "paper" | "paired", test = "t" | "wilcoxon" |
                            "permutation" | "auto", [table.labels], [table.metric_labels]
    [[published]]           metric, value, dataset, row = {kind = "name(params)"}, T, source, note

Settings are layered, later wins: ``[defaults]`` < the grid < ``[profiles.P]`` < ``[grid.profiles.P]``.
``plugins`` replace per kind (a layer naming ``trainer=…`` replaces the trainers, keeps the neurons).
``overrides`` (profile settings such as ``ann_epochs``) are suite-wide per profile, because one run has
one profile: every grid of a run shares them, so the union of their cells can run under one run id.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bench_suite.core.errors import BenchSuiteError, did_you_mean, unknown_name_message
from bench_suite.core.params import PluginChoice, parse_plugin_option
from bench_suite.core.profiles import PROFILES, resolve_profile
from bench_suite.core.registry import BUILTIN_DISTRIBUTION, third_party_entry_points
from bench_suite.experiment.spec import GRID_KINDS, Cell, RunSpec, expand, with_defaults

ENTRY_POINT_GROUP = "bench_suite.suites"
#: table dimensions: the identity columns of a report's tidy frame (seed is the replicate, not a dimension)
DIMENSIONS = ("dataset", "model", "trainer", "neuron", "norm", "T", "variant", "metric")
_SETTING_KEYS = ("plugins", "datasets", "time_steps", "seeds", "folds")
_TOP_KEYS = ("description", "reproduces", "defaults", "grid", "profiles", "table", "published")
_TABLE_KEYS = ("rows", "columns", "metrics", "baseline", "caption", "label_separator", "lower_is_better",
               "labels", "metric_labels", "stats", "test")
#: [table] stats / test: the significance procedure of the suite's table (None: a suite with
#: [reproduces] paper uses the paper's unpaired procedure, any other the paired default test)
_TABLE_STATS = ("paired", "paper")
_TABLE_TESTS = ("t", "wilcoxon", "permutation", "auto")
_PUBLISHED_KEYS = ("metric", "value", "dataset", "row", "T", "source", "note")


# -- model ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SuiteInfo:
    """One line of ``bench-suite list suites``; ``error`` is set for a suite that cannot be loaded."""

    name: str
    description: str
    distribution: str
    version: str = ""
    reproduces: str = ""
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    """A value the paper reports, placed beside the measured cell it describes.

    ``dataset`` and the ``row`` values are selectors ``name`` or ``name(key=value, ...)``: they match a
    label with that name whose parameters include the given ones, so ``bsd68(sigma=25)`` matches
    ``bsd68(sigma=25,patch_size=48)`` and ``trainer=three-stage(loss=bce)`` still matches when a profile
    adds ``epochs=1``. ``T`` (optional) pins the time steps.
    """

    metric: str
    value: float
    dataset: str | None = None
    row: Mapping[str, str] = dataclasses.field(default_factory=dict)
    T: int | None = None
    source: str = ""
    note: str = ""


@dataclasses.dataclass(frozen=True)
class TableLayout:
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    metrics: tuple[str, ...]
    baseline: str | None = None
    caption: str = ""
    label_separator: str = "+"
    lower_is_better: frozenset[str] = frozenset()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    metric_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stats: str | None = None
    test: str | None = None


@dataclasses.dataclass(frozen=True)
class Grid:
    """One ``[[grid]]`` block: its own settings and its per-profile replacements (raw, validated)."""

    name: str
    settings: Mapping[str, Any]
    profiles: Mapping[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    reproduces: Mapping[str, str]
    defaults: Mapping[str, Any]
    grids: tuple[Grid, ...]
    profiles: Mapping[str, Mapping[str, Any]]
    table: TableLayout
    published: tuple[Published, ...]
    distribution: str
    origin: str  # where it was read from, for messages
    definition: Mapping[str, Any]  # the TOML data as read: JSON-able, stored with a run
    text: str = ""  # the TOML source, stored too: JSON stores may sort keys, and label order is row order
    # `run --suite … --set KEY=VALUE`: on top of the profile's own overrides, stored with the run
    extra_overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)

    # -- what to run ------------------------------------------------------------------------------
    def settings(self, profile: str, grid: Grid) -> dict[str, Any]:
        """The grid's settings under ``profile``, layers merged (see the module docstring)."""
        _check_profile_name(profile, self)
        merged: dict[str, Any] = {"plugins": {}}
        layers = (self.defaults, grid.settings, self.profiles.get(profile, {}), grid.profiles.get(profile, {}))
        for layer in layers:
            for key, value in layer.items():
                if key == "plugins":
                    by_kind: dict[str, list[PluginChoice]] = {}
                    for choice in value:
                        by_kind.setdefault(choice.kind, []).append(choice)
                    merged["plugins"].update(by_kind)  # a layer replaces the kinds it names, keeps the rest
                elif key in _SETTING_KEYS or key == "skip":
                    merged[key] = value
        return merged

    def overrides(self, profile: str) -> dict[str, str]:
        _check_profile_name(profile, self)
        raw = self.profiles.get(profile, {}).get("overrides", {})
        # RunSpec keeps overrides as the strings --set would give, so a suite run and a CLI run store alike
        return {**{key: _override_text(value) for key, value in raw.items()}, **self.extra_overrides}

    def with_overrides(self, overrides: Mapping[str, str]) -> Suite:
        """The suite with ``--set`` overrides applied over every profile's own (they win)."""
        return dataclasses.replace(self, extra_overrides={**self.extra_overrides, **overrides})

    def run_specs(
        self, profile: str, data_root: str | os.PathLike | None = None, seeds: Iterable[int] | None = None,
        registry=None,
    ) -> list[RunSpec]:
        """One RunSpec per grid block that the profile does not skip; ``seeds`` replaces every grid's."""
        if registry is None:
            from bench_suite.core.registry import get_registry

            registry = get_registry()
        overrides = self.overrides(profile)
        try:
            resolve_profile(profile, overrides)
        except BenchSuiteError as exc:
            where = " (with --set)" if self.extra_overrides else ""
            raise BenchSuiteError(f"{self._where()} [profiles.{profile}].overrides{where}: {exc}") from None
        specs = []
        for grid in self.grids:
            merged = self.settings(profile, grid)
            if merged.get("skip"):
                continue
            where = f"{self._where()} grid '{grid.name}' (profile {profile})"
            for key in ("datasets", "time_steps"):
                if not merged.get(key):
                    raise BenchSuiteError(f"{where}: no {key} given; add `{key} = [...]` to the grid or profile")
            datasets = [parse_plugin_option(f"dataset={text}") for text in merged["datasets"]]
            if merged.get("folds"):
                datasets = _with_folds(datasets, int(merged["folds"]))
            choices = with_defaults({"dataset": _unique(datasets), **merged["plugins"]}, registry)
            grid_seeds = tuple(seeds) if seeds is not None else tuple(merged.get("seeds") or (0,))
            specs.append(RunSpec(
                choices=choices, time_steps=tuple(_unique(merged["time_steps"])), seeds=grid_seeds,
                profile=profile, overrides=dict(overrides),
                data_root=str(data_root) if data_root is not None else None,
            ))
        if not specs:
            raise BenchSuiteError(f"{self._where()}: profile '{profile}' skips every grid; nothing to run")
        return specs

    def cells(self, profile: str, registry=None, seeds: Iterable[int] | None = None) -> list[Cell]:
        """Every grid expanded and de-duplicated by cell key (grids may share cells, e.g. the ANN)."""
        if registry is None:
            from bench_suite.core.registry import get_registry

            registry = get_registry()
        cells: dict[str, Cell] = {}
        grids = [g for g in self.grids if not self.settings(profile, g).get("skip")]
        for grid, spec in zip(grids, self.run_specs(profile, seeds=seeds, registry=registry), strict=True):
            try:
                expanded = expand(spec, registry)
            except BenchSuiteError as exc:
                raise BenchSuiteError(f"{self._where()} grid '{grid.name}' (profile {profile}): {exc}") from None
            for cell in expanded:
                cells.setdefault(cell.key, cell)
        return list(cells.values())

    def plan(
        self, profile: str, registry=None, data_root: str | os.PathLike | None = None,
        seeds: Iterable[int] | None = None,
    ) -> tuple[list[Cell], RunSpec]:
        """What a runner needs: every cell, and one RunSpec for ``Runner.execute`` (its profile, overrides
        and data root are what all the suite's RunSpecs share; the grid it names is not used there)."""
        return self.cells(profile, registry, seeds), self.run_specs(profile, data_root, seeds, registry)[0]

    @classmethod
    def plan_stored(cls, stored: Mapping[str, Any], registry=None) -> tuple[Suite, list[Cell], RunSpec]:
        """``plan`` for a run's stored spec (``--resume``), with the options it was started with."""
        suite = cls.from_stored(stored)
        if stored.get("overrides"):
            suite = suite.with_overrides(stored["overrides"])
        if stored.get("grids") is not None:
            suite = suite.only_grids(stored["grids"])
        cells, spec = suite.plan(stored["profile"], registry, stored.get("data_root"), stored.get("seeds"))
        return suite, cells, spec

    def only_grids(self, names: Iterable[str]) -> Suite:
        """The suite cut to the named ``[[grid]]`` blocks (e.g. the one dataset a researcher has)."""
        names = list(names)
        if not names:
            return self
        known = [g.name for g in self.grids]
        for name in names:
            if name not in known:
                raise BenchSuiteError(
                    f"{self._where()} has no grid '{name}'{did_you_mean(name, known)}; its grids: {', '.join(known)}"
                )
        return dataclasses.replace(self, grids=tuple(g for g in self.grids if g.name in names))

    # -- storing with a run -----------------------------------------------------------------------
    def spec_dict(
        self, profile: str, data_root: str | os.PathLike | None = None, seeds: Iterable[int] | None = None,
    ) -> dict[str, Any]:
        """What a suite run stores as its spec: the whole definition, so resuming does not depend on the
        suite file still being installed or unchanged, plus the options and the RunSpecs it became."""
        specs = self.run_specs(profile, data_root, seeds)
        return {
            "suite": self.name, "distribution": self.distribution, "origin": self.origin,
            "definition": json.loads(json.dumps(self.definition)), "toml": self.text or None,
            "profile": profile, "data_root": str(data_root) if data_root is not None else None,
            "seeds": list(seeds) if seeds is not None else None,
            "grids": [grid.name for grid in self.grids],
            "overrides": dict(self.extra_overrides),
            "specs": [spec.to_dict() for spec in specs],
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Suite:
        if "suite" not in data or "definition" not in data:
            raise BenchSuiteError("this run was not started from a suite (its stored spec has no suite definition)")
        origin = f"stored run definition of {data.get('origin') or data['suite']}"
        definition = data["definition"]
        if data.get("toml"):
            try:
                definition = tomllib.loads(data["toml"])
            except tomllib.TOMLDecodeError:
                pass  # the JSON definition holds the same data, only perhaps in another key order
        suite = parse_suite(data["suite"], definition, data.get("distribution", "stored run"), origin)
        return dataclasses.replace(suite, text=data.get("toml") or "")

    def info(self) -> SuiteInfo:
        return SuiteInfo(self.name, self.description, self.distribution, reproduces=_reproduces_text(self))

    def _where(self) -> str:
        return f"suite '{self.name}' ({self.origin})"


# -- discovery ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Source:
    name: str
    distribution: str
    version: str
    resource: Any  # Traversable / Path of the TOML file, or None when broken
    error: str | None = None


def _walk(folder: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if not entry.name.startswith((".", "_")):
                yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".toml"):
            yield f"{prefix}{entry.name[: -len('.toml')]}", entry


def _as_folder(obj: Any) -> Any:
    if callable(obj) and not hasattr(obj, "iterdir"):
        obj = obj()
    if isinstance(obj, (str, os.PathLike)):
        obj = Path(obj)
    if not (hasattr(obj, "iterdir") and hasattr(obj, "is_dir")) or not obj.is_dir():
        raise TypeError(f"the entry point must name a folder of suite TOML files, got {obj!r}")
    return obj


def _sources() -> list[_Source]:
    from bench_suite import __version__

    sources = [
        _Source(name, BUILTIN_DISTRIBUTION, __version__, resource)
        for name, resource in _walk(importlib.resources.files("bench_suite.experiment") / "suites")
    ]
    for entry_point, dist_name, version in third_party_entry_points(ENTRY_POINT_GROUP):
        try:
            folder = _as_folder(entry_point.load())
            found = list(_walk(folder))
        except Exception as exc:  # a broken third-party package is listed with its error, nothing else breaks
            sources.append(_Source(entry_point.name, dist_name, version, None, f"{type(exc).__name__}: {exc}"))
            continue
        sources += [_Source(name, dist_name, version, resource) for name, resource in found]
    return sources


def _clash_message(name: str, providers: list[_Source]) -> str:
    names = " and ".join(f"'{s.distribution}'" for s in providers)
    return (f"two suites are named '{name}' (from {names}); uninstall one of the packages or ask its "
            "authors to rename the suite")


def list_suites() -> list[SuiteInfo]:
    """Every suite with its description and distribution; unloadable ones carry their error."""
    sources = _sources()
    by_name: dict[str, list[_Source]] = {}
    for source in sources:
        by_name.setdefault(source.name, []).append(source)
    infos = []
    for source in sources:
        if source.error is not None:
            infos.append(SuiteInfo(source.name, "", source.distribution, source.version, error=source.error))
            continue
        clash = by_name[source.name]
        try:
            suite = _read(source)
        except BenchSuiteError as exc:
            infos.append(SuiteInfo(source.name, "", source.distribution, source.version, error=str(exc)))
            continue
        error = _clash_message(source.name, clash) if len(clash) > 1 else None
        infos.append(SuiteInfo(source.name, suite.description, source.distribution, source.version,
                               _reproduces_text(suite), error))
    return sorted(infos, key=lambda info: (info.name, info.distribution))


def load_suite(name: str) -> Suite:
    """A suite by name (``spiking-unet/table2``), or from a ``.toml`` file path."""
    if name.endswith(".toml") and Path(name).is_file():
        path = Path(name)
        return _read(_Source(path.stem, "local file", "", path))
    sources = [s for s in _sources() if s.resource is not None]
    matches = [s for s in sources if s.name == name]
    if not matches:
        names = sorted({s.name for s in sources})
        raise BenchSuiteError(
            unknown_name_message("suite", name, names) + " — see `bench-suite list suites`"
        )
    if len(matches) > 1:
        raise BenchSuiteError(_clash_message(name, matches))
    return _read(matches[0])


def _read(source: _Source) -> Suite:
    origin = str(source.resource)
    try:
        text = source.resource.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenchSuiteError(f"suite '{source.name}' ({origin}) is not valid TOML: {exc}; fix the file") from None
    except OSError as exc:
        raise BenchSuiteError(f"suite '{source.name}' ({origin}) cannot be read: {exc}") from None
    return dataclasses.replace(parse_suite(source.name, data, source.distribution, origin), text=text)


# -- validation -----------------------------------------------------------------------------------


class _Checker:
    """Reads one table of the TOML data, naming the file and the key path in every error."""

    def __init__(self, suite: str, origin: str) -> None:
        self.prefix = f"suite '{suite}' ({origin})"

    def fail(self, where: str, problem: str) -> BenchSuiteError:
        return BenchSuiteError(f"{self.prefix}: {where}: {problem}")

    def keys(self, table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                raise self.fail(
                    f"{where}.{key}" if where else key,
                    f"unknown key{did_you_mean(key, allowed)} allowed here: {', '.join(allowed)}",
                )

    def table(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table ([{where}] or {{...}}), got {type(value).__name__}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {value!r}")
        return value

    def texts(self, value: Any, where: str, allow_single: bool = False) -> tuple[str, ...]:
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def positive_ints(self, value: Any, where: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
        ):
            raise self.fail(where, f"expected a non-empty list of whole numbers ≥ 1, got {value!r}")
        return tuple(value)

    def settings(self, block: Mapping[str, Any], where: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
        self.keys(block, (*_SETTING_KEYS, *extra), where)
        out: dict[str, Any] = {}
        for key, value in block.items():
            path = f"{where}.{key}" if where else key
            if key == "plugins":
                out[key] = tuple(self.plugin(text, f"{path}[{i}]", dataset_ok=False) for i, text in
                                 enumerate(self.texts(value, path)))
            elif key == "datasets":
                names = self.texts(value, path)
                if not names:
                    raise self.fail(path, "give at least one dataset")
                for i, text in enumerate(names):
                    self.plugin(f"dataset={text}", f"{path}[{i}]")
                out[key] = names
            elif key == "time_steps":
                out[key] = self.positive_ints(value, path)
            elif key == "seeds":
                if not isinstance(value, list) or not value or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
                ) or len(set(value)) != len(value):
                    raise self.fail(path, f"expected a list of distinct seeds ≥ 0, got {value!r}")
                out[key] = tuple(value)
            elif key == "folds":
                if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                    raise self.fail(path, f"expected a number of folds ≥ 2, got {value!r}")
                out[key] = value
            elif key == "skip":
                if not isinstance(value, bool):
                    raise self.fail(path, f"expected true or false, got {value!r}")
                out[key] = value
        return out

    def plugin(self, text: str, where: str, dataset_ok: bool = True) -> PluginChoice:
        try:
            choice = parse_plugin_option(text)
        except BenchSuiteError:
            raise self.fail(where, f"'{text}' is not KIND=NAME or KIND=NAME(key=value, ...)") from None
        if choice.kind not in GRID_KINDS:
            raise self.fail(where, f"unknown kind '{choice.kind}'{did_you_mean(choice.kind, GRID_KINDS)} "
                                   f"kinds: {', '.join(GRID_KINDS)}")
        if choice.kind == "dataset" and not dataset_ok:
            raise self.fail(where, "list datasets under `datasets = [...]`, not in plugins")
        return choice


def parse_suite(name: str, data: Mapping[str, Any], distribution: str = "", origin: str = "") -> Suite:
    """Validate TOML data (a dict) into a :class:`Suite`; errors name the suite, the file and the key."""
    check = _Checker(name, origin or name)
    check.table(data, "the file")
    check.keys(data, _TOP_KEYS, "")
    description = check.text(data.get("description", ""), "description").strip()
    if not description:
        raise check.fail("description", "missing; say in one line what the suite reproduces")
    reproduces = check.table(data.get("reproduces", {}), "reproduces")
    check.keys(reproduces, ("paper", "table", "note"), "reproduces")
    for key, value in reproduces.items():
        check.text(value, f"reproduces.{key}")

    defaults = check.settings(check.table(data.get("defaults", {}), "defaults"), "defaults")

    raw_grids = data.get("grid")
    if not isinstance(raw_grids, list) or not raw_grids:
        raise check.fail("grid", "give at least one [[grid]] block (plugins, datasets, time_steps)")
    grids, names = [], set()
    for index, raw in enumerate(raw_grids):
        where = f"grid[{index}]"
        raw = check.table(raw, where)
        grid_name = check.text(raw.get("name", str(index)), f"{where}.name")
        if grid_name in names:
            raise check.fail(f"{where}.name", f"grid name '{grid_name}' is used twice")
        names.add(grid_name)
        settings = check.settings({k: v for k, v in raw.items() if k not in ("name", "profiles")}, where)
        profiles = {}
        for profile, block in check.table(raw.get("profiles", {}), f"{where}.profiles").items():
            _check_profile_key(check, profile, f"{where}.profiles")
            profiles[profile] = check.settings(
                check.table(block, f"{where}.profiles.{profile}"), f"{where}.profiles.{profile}", ("skip",))
        grids.append(Grid(grid_name, settings, profiles))

    suite_profiles = {}
    for profile, block in check.table(data.get("profiles", {}), "profiles").items():
        _check_profile_key(check, profile, "profiles")
        block = check.table(block, f"profiles.{profile}")
        settings = check.settings({k: v for k, v in block.items() if k != "overrides"}, f"profiles.{profile}")
        overrides = check.table(block.get("overrides", {}), f"profiles.{profile}.overrides")
        for key, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise check.fail(f"profiles.{profile}.overrides.{key}", f"expected a number, got {value!r}")
        try:
            resolve_profile(profile, {key: _override_text(value) for key, value in overrides.items()})
        except BenchSuiteError as exc:
            raise check.fail(f"profiles.{profile}.overrides", str(exc)) from None
        suite_profiles[profile] = {**settings, "overrides": dict(overrides)}

    table = _parse_table(check, data.get("table"))
    published = _parse_published(check, data.get("published", []), table)
    suite = Suite(
        name=name, description=description, reproduces=dict(reproduces), defaults=defaults, grids=tuple(grids),
        profiles=suite_profiles, table=table, published=published, distribution=distribution,
        origin=origin or name, definition=json.loads(json.dumps(data)),
    )
    # every profile must give every grid what it needs, caught here rather than when a run starts
    for profile in PROFILES:
        suite.run_specs(profile)
    return suite


def _parse_table(check: _Checker, raw: Any) -> TableLayout:
    if raw is None:
        raise check.fail("table", "missing; give [table] with rows, columns and metrics")
    raw = check.table(raw, "table")
    check.keys(raw, _TABLE_KEYS, "table")
    rows = check.texts(raw.get("rows", []), "table.rows", allow_single=True)
    columns = check.texts(raw.get("columns", ["dataset", "metric"]), "table.columns", allow_single=True)
    for where, dims in (("table.rows", rows), ("table.columns", columns)):
        if not dims:
            raise check.fail(where, f"give at least one of {', '.join(DIMENSIONS)}")
        for dim in dims:
            if dim not in DIMENSIONS:
                raise check.fail(where, f"unknown dimension '{dim}'{did_you_mean(dim, DIMENSIONS)} "
                                        f"dimensions: {', '.join(DIMENSIONS)}")
    if set(rows) & set(columns):
        raise check.fail("table", f"{', '.join(sorted(set(rows) & set(columns)))} is both a row and a column")
    if "metric" in rows:
        raise check.fail("table.rows", "metrics go in columns")
    if "metric" not in columns:
        raise check.fail("table.columns", "add 'metric' to the columns (each cell shows one metric)")
    metrics = check.texts(raw.get("metrics", []), "table.metrics")
    if not metrics:
        raise check.fail("table.metrics", "give at least one metric, e.g. [\"f1\"]")
    baseline = raw.get("baseline")
    if baseline is not None:
        baseline = check.text(baseline, "table.baseline")
        kind = baseline.split("=", 1)[0].strip()
        if "=" not in baseline or kind not in DIMENSIONS or kind == "metric":
            raise check.fail("table.baseline", f"'{baseline}' is not KIND=NAME with KIND one of "
                                               f"{', '.join(d for d in DIMENSIONS if d != 'metric')}")
    labels = check.table(raw.get("labels", {}), "table.labels")
    for key, value in labels.items():
        check.text(value, f"table.labels.{key}")
        if "=" not in key:
            raise check.fail(f"table.labels.{key}", "keys are selectors KIND=NAME, e.g. \"trainer=asf\" = \"FT\"")
    metric_labels = check.table(raw.get("metric_labels", {}), "table.metric_labels")
    for key, value in metric_labels.items():
        check.text(value, f"table.metric_labels.{key}")
    chosen = {}
    for key, allowed in (("stats", _TABLE_STATS), ("test", _TABLE_TESTS)):
        if raw.get(key) is not None:
            chosen[key] = check.text(raw[key], f"table.{key}")
            if chosen[key] not in allowed:
                raise check.fail(f"table.{key}", f"'{chosen[key]}' is not one of {', '.join(allowed)}")
    return TableLayout(
        rows=rows, columns=columns, metrics=metrics, baseline=baseline,
        caption=check.text(raw.get("caption", ""), "table.caption"),
        label_separator=check.text(raw.get("label_separator", "+"), "table.label_separator"),
        lower_is_better=frozenset(check.texts(raw.get("lower_is_better", []), "table.lower_is_better")),
        labels=dict(labels), metric_labels=dict(metric_labels), **chosen,
    )


def _parse_published(check: _Checker, raw: Any, table: TableLayout) -> tuple[Published, ...]:
    if not isinstance(raw, list):
        raise check.fail("published", "expected [[published]] blocks")
    entries = []
    for index, entry in enumerate(raw):
        where = f"published[{index}]"
        entry = check.table(entry, where)
        check.keys(entry, _PUBLISHED_KEYS, where)
        for key in ("metric", "value"):
            if key not in entry:
                raise check.fail(f"{where}.{key}", "missing")
        metric = check.text(entry["metric"], f"{where}.metric")
        if metric not in table.metrics:
            raise check.fail(f"{where}.metric", f"'{metric}' is not one of the table's metrics "
                                                f"({', '.join(table.metrics)})")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise check.fail(f"{where}.value", f"expected a number, got {value!r}")
        row = check.table(entry.get("row", {}), f"{where}.row")
        for kind, selector in row.items():
            kinds = [d for d in DIMENSIONS if d not in ("metric", "T")]
            if kind not in kinds:
                raise check.fail(f"{where}.row.{kind}", f"unknown kind; use one of {', '.join(kinds)} "
                                                        "(time steps go in the entry's own T = ...)")
            check.text(selector, f"{where}.row.{kind}")
        t = entry.get("T")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 0):
            raise check.fail(f"{where}.T", f"expected a whole number of time steps, got {t!r}")
        dataset = entry.get("dataset")
        entries.append(Published(
            metric=metric, value=float(value),
            dataset=check.text(dataset, f"{where}.dataset") if dataset is not None else None,
            row=dict(row), T=t, source=check.text(entry.get("source", ""), f"{where}.source"),
            note=check.text(entry.get("note", ""), f"{where}.note"),
        ))
    return tuple(entries)


# -- selectors (shared with tables) -------------------------------------------------------------


# -- helpers --------------------------------------------------------------------------------------


def _check_profile_key(check: _Checker, profile: str, where: str) -> None:
    if profile not in PROFILES:
        raise check.fail(f"{where}.{profile}", unknown_name_message("profile", profile, PROFILES))


def _check_profile_name(profile: str, suite: Suite) -> None:
    if profile not in PROFILES:
        raise BenchSuiteError(unknown_name_message("profile", profile, PROFILES) + f" (suite '{suite.name}')")


def _override_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _with_folds(datasets: list[PluginChoice], folds: int) -> list[PluginChoice]:
    """Each dataset becomes ``folds`` choices (fold 0 … folds−1), as ``bench-suite run --folds`` does."""
    expanded = []
    for choice in datasets:
        kept = tuple(p for p in choice.params if p[0] not in ("fold", "folds"))
        expanded += [PluginChoice("dataset", choice.name, (*kept, ("folds", str(folds)), ("fold", str(i))))
                     for i in range(folds)]
    return expanded


def _reproduces_text(suite: Suite) -> str:
    return " ".join(v for v in (suite.reproduces.get("paper", ""), suite.reproduces.get("table", "")) if v)


def method_labeller(suite: Suite):
    """``coords → "MT+FT"``: the suite's row labels, for figure legends."""
    from bench_suite.results.tables import method_label

    return lambda coords: method_label(suite.table, coords)
