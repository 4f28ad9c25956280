"""What a run is: profiles, the RunSpec a command line becomes, and the grid of cells it expands to."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from bench_suite.errors import BenchSuiteError, did_you_mean, unknown_name_message
from bench_suite.params import PluginChoice, build_params, params_to_dict
from bench_suite.registry import Registry


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much work a run does. ``paper`` is the reference studies' settings (for a GPU)."""

    name: str
    width: int  # U-Net base width
    ann_epochs: int
    ann_lr: float
    finetune_epochs: int
    finetune_lr: float
    patches_per_image: int
    batch_size: int
    calibration_samples: int  # reference: 64 segmentation / 32 denoising patches
    max_patches: int = 0  # cap on training patches per epoch over all images (0: none); keeps big sets quick
    dt_epochs: int = 1  # direct training (BPTT through T steps) epochs
    dt_lr: float = 1e-3
    eval_batch_size: int = 16
    max_train_batches: int = 0  # cap on batches per epoch of spiking training (asf, dt, three-stage); 0: none


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", width=4, ann_epochs=2, ann_lr=2e-3, finetune_epochs=1, finetune_lr=1e-4,
                     patches_per_image=24, batch_size=8, calibration_samples=16, dt_epochs=1,
                     max_patches=256),
    "quick": Profile("quick", width=16, ann_epochs=12, ann_lr=2e-3, finetune_epochs=1, finetune_lr=1e-4,
                     patches_per_image=64, batch_size=16, calibration_samples=64, dt_epochs=3,
                     max_patches=4096),
    "paper": Profile("paper", width=64, ann_epochs=200, ann_lr=1e-3, finetune_epochs=100, finetune_lr=1e-6,
                     patches_per_image=600, batch_size=8, calibration_samples=64, dt_epochs=100),
}


#: what changes for volumes (3-D datasets), before the user's --set: a whole 40×56×40 volume is 35× a
#: 48×48 patch and BPTT keeps every step's activations, so the CPU profiles use a narrower 3-D U-Net and
#: smaller batches; quick fine-tunes on 26 random batches of 4 volumes per epoch (on Task04 half of the
#: 208 training volumes; a whole BPTT epoch at T=20 takes about 5 minutes on 2 cores)
VOLUME_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"batch_size": 2, "calibration_samples": 4, "eval_batch_size": 4},
    "quick": {"width": 8, "batch_size": 4, "calibration_samples": 8, "eval_batch_size": 8,
              "max_train_batches": 26},
    "paper": {},
}


def resolve_profile(name: str, overrides: dict[str, str] | None = None, spatial_dims: int = 2) -> Profile:
    """The named profile, adjusted for volumes when ``spatial_dims`` is 3, then the ``--set`` overrides."""
    if name not in PROFILES:
        raise BenchSuiteError(unknown_name_message("profile", name, PROFILES))
    profile = PROFILES[name]
    if spatial_dims == 3 and VOLUME_SETTINGS.get(name):
        profile = dataclasses.replace(profile, **VOLUME_SETTINGS[name])
    if not overrides:
        return profile
    fields = {f.name: f for f in dataclasses.fields(Profile) if f.name != "name"}
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise BenchSuiteError(
                f"--set {key}: no such setting{did_you_mean(key, fields)} settings: {', '.join(fields)}"
            )
        kind = int if fields[key].type in (int, "int") else float
        try:
            value = kind(raw)
        except ValueError:
            raise BenchSuiteError(f"--set {key}={raw}: '{raw}' is not a valid {kind.__name__}") from None
        if value <= 0:
            raise BenchSuiteError(f"--set {key}={raw}: the value must be positive")
        changes[key] = value
    return dataclasses.replace(profile, **changes)


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
DEFAULTS = {"model": "unet2d", "trainer": "conv", "neuron": "mt", "norm": "cw"}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    choices: dict[str, tuple[PluginChoice, ...]]
    time_steps: tuple[int, ...]
    seeds: tuple[int, ...]
    profile: str
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    data_root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "choices": {k: [[c.kind, c.name, list(map(list, c.params))] for c in v] for k, v in self.choices.items()},
            "time_steps": list(self.time_steps), "seeds": list(self.seeds), "profile": self.profile,
            "overrides": dict(self.overrides), "data_root": self.data_root,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        choices = {
            k: tuple(PluginChoice(kind, name, tuple(tuple(p) for p in params)) for kind, name, params in v)
            for k, v in data["choices"].items()
        }
        return cls(choices, tuple(data["time_steps"]), tuple(data["seeds"]), data["profile"],
                   dict(data.get("overrides") or {}), data.get("data_root"))


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
