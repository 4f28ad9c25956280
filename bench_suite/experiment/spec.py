"""What a run is: profiles, the RunSpec a command line becomes, and the grid of cells it expands to."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from bench_suite.core.params import PluginChoice, build_params, params_to_dict
from bench_suite.core.registry import Registry


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A plugin choice checked against the registry, with validated parameters."""

    kind: str
    name: str
    params: Any
    choice: PluginChoice

    @property
    def label(self) -> str:
        return self.choice.label()

    def params_dict(self) -> dict[str, Any]:
        return params_to_dict(self.params)


def resolve(registry: Registry, choice: PluginChoice) -> Resolved:
    info = registry.get(choice.kind, choice.name)
    params = build_params(info.params_cls, dict(choice.params), f"{choice.kind} '{choice.name}'")
    return Resolved(choice.kind, choice.name, params, choice)


GRID_KINDS = ("dataset", "model", "trainer", "neuron", "norm")
#: what a kind the command line or a suite grid leaves out defaults to (the same everywhere): the demo's
#: grid. The model defaults to the U-Net of the datasets' dimensionality (see :func:`with_defaults`).
DEFAULTS: dict[str, tuple[str, ...]] = {
    "dataset": ("demo-vessels",), "trainer": ("ann", "conv", "asf"), "neuron": ("if", "mt"), "norm": ("cw",),
}
DEFAULT_TIME_STEPS = (10,)
DEFAULT_SEEDS = (0,)
DEFAULT_PROFILE = "quick"
MODEL_BY_DIMS = {2: "unet2d", 3: "unet3d"}


def with_defaults(choices: dict[str, list[PluginChoice]], registry: Registry) -> dict[str, tuple[PluginChoice, ...]]:
    """Every grid kind filled: the given choices, else :data:`DEFAULTS`; the model by the datasets' dims."""
    filled: dict[str, tuple[PluginChoice, ...]] = {}
    for kind in GRID_KINDS:
        given = list(choices.get(kind) or ())
        if not given and kind == "model":
            datasets = filled["dataset"]
            dims = {getattr(registry.get("dataset", c.name).obj, "spatial_dims", 2) for c in datasets}
            given = [PluginChoice("model", MODEL_BY_DIMS[3 if dims == {3} else 2])]
        elif not given:
            given = [PluginChoice(kind, name) for name in DEFAULTS[kind]]
        filled[kind] = tuple(dict.fromkeys(given))
    return filled


@dataclasses.dataclass(frozen=True)
class RunSpec:
    choices: dict[str, tuple[PluginChoice, ...]]
    time_steps: tuple[int, ...]
    seeds: tuple[int, ...]
    profile: str
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    data_root: str | None = None
    #: how cells compute (device, precision, determinism, threads): see experiment/environment.py
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "choices": {k: [[c.kind, c.name, list(map(list, c.params))] for c in v] for k, v in self.choices.items()},
            "time_steps": list(self.time_steps), "seeds": list(self.seeds), "profile": self.profile,
            "overrides": dict(self.overrides), "data_root": self.data_root, "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        choices = {
            k: tuple(PluginChoice(kind, name, tuple(tuple(p) for p in params)) for kind, name, params in v)
            for k, v in data["choices"].items()
        }
        return cls(choices, tuple(data["time_steps"]), tuple(data["seeds"]), data["profile"],
                   dict(data.get("overrides") or {}), data.get("data_root"), dict(data.get("environment") or {}))


@dataclasses.dataclass(frozen=True)
class Cell:
    """One point of the grid. ``neuron``/``norm`` are None (and T 0) where the trainer does not use them."""

    dataset: Resolved
    model: Resolved
    trainer: Resolved
    neuron: Resolved | None
    norm: Resolved | None
    time_steps: int
    seed: int
    profile: str

    def config(self) -> dict[str, Any]:
        def label(r: Resolved | None) -> str:
            return r.label if r is not None else "-"

        def params(r: Resolved | None) -> dict[str, Any]:
            return r.params_dict() if r is not None else {}

        dataset_params = params(self.dataset)
        # a cross-validation fold is a replicate (like a seed): kept out of the dataset's label
        fold = dataset_params.get("fold")
        dataset_label = PluginChoice(
            "dataset", self.dataset.name, tuple(p for p in self.dataset.choice.params if p[0] not in ("fold", "folds"))
        ).label()
        return {
            "dataset": dataset_label, "dataset_params": dataset_params, "fold": fold,
            "model": label(self.model), "model_params": params(self.model),
            "trainer": label(self.trainer), "trainer_params": params(self.trainer),
            "neuron": label(self.neuron), "neuron_params": params(self.neuron),
            "norm": label(self.norm), "norm_params": params(self.norm),
            "T": self.time_steps, "seed": self.seed, "profile": self.profile,
        }

    @property
    def key(self) -> str:
        return json.dumps(self.config(), sort_keys=True)

    def title(self) -> str:
        parts = [self.dataset.label, self.trainer.label]
        if self.neuron is not None:
            parts.append(self.neuron.label)
        if self.norm is not None:
            parts.append(self.norm.label)
        if self.time_steps:
            parts.append(f"T={self.time_steps}")
        parts.append(f"seed={self.seed}")
        return " ".join(parts)


def expand(spec: RunSpec, registry: Registry) -> list[Cell]:
    """The grid: product of every option, collapsed where a trainer ignores neuron, norm or T."""
    resolved = {kind: [resolve(registry, c) for c in spec.choices[kind]] for kind in GRID_KINDS}
    cells: dict[str, Cell] = {}
    for dataset, model, trainer, seed in itertools.product(
        resolved["dataset"], resolved["model"], resolved["trainer"], spec.seeds
    ):
        uses = getattr(registry.get("trainer", trainer.name).obj, "uses", frozenset({"neuron", "norm", "T"}))
        neurons = resolved["neuron"] if "neuron" in uses else [None]
        norms = resolved["norm"] if "norm" in uses else [None]
        steps = spec.time_steps if "T" in uses else (0,)
        for neuron, norm, time_steps in itertools.product(neurons, norms, steps):
            cell = Cell(dataset, model, trainer, neuron, norm, time_steps, seed, spec.profile)
            cells.setdefault(cell.key, cell)
    return list(cells.values())
