"""What trainers share: the context a runner hands them, training batches, task losses, conversion."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn

from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.profiles import Profile
from bench_suite.core.tasks import DatasetBundle
from bench_suite.experiment.spec import Cell


class NullProgress:
    """Progress sink used when nobody watches (tests, library use)."""

    def stage(self, description: str, total: int) -> Callable[[int], None]:
        return lambda advance=1: None


@dataclasses.dataclass
class CellContext:
    """Everything a trainer may use for one cell; built by the runner."""

    cell: Cell
    bundle: DatasetBundle
    profile: Profile
    model_plugin: Any
    get_ann: Callable[..., nn.Module]  # get_ann(loss=None): the trained ANN, cached per loss
    make_neuron: Callable[[float], SpikingNeuron] | None
    norm: Any | None
    calibration_cache: Any | None
    progress: Any = dataclasses.field(default_factory=NullProgress)
    curves: list[tuple[str, int, str, float]] = dataclasses.field(default_factory=list)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.cell.seed

    @property
    def time_steps(self) -> int:
        return self.cell.time_steps

    def log_curve(self, stage: str, epoch: int, metric: str, value: float) -> None:
        self.curves.append((stage, epoch, metric, float(value)))
