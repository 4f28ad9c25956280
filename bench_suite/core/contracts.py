"""The written contract of every plugin kind, in one place, and the check the registry runs on it.

A plugin is a class named by an entry point (or the built-in list). Every kind shares three members:

- ``Params``: a frozen dataclass of the plugin's parameters (or ``None`` when it takes none); fields are
  bool, int, float, str, ``tuple[float, ...]`` or ``typing.Literal``; ``__post_init__`` may raise
  ``ValueError`` to refuse a value. ``--plugin 'KIND=NAME(key=value)'`` fills it.
- ``__init__(params)``: receives the validated ``Params`` instance, or ``None`` for the defaults
  (neurons also receive ``threshold`` and ``channels``).
- a one-line class docstring: ``bench-suite list`` shows it.

What each kind adds is the ``typing.Protocol`` below. :func:`contract_problems` checks the members a
class must have (the registry refuses a plugin that lacks one, naming what is missing); the conformance
kit :mod:`bench_suite.testing` checks the behaviour (shapes, dynamics, round trips).

Data flows one way through them: a dataset's :class:`~bench_suite.core.tasks.DatasetBundle` and a
model's ANN reach a trainer through a :class:`TrainerContext`; the trainer converts or trains with the
cell's norm and neuron (through :mod:`bench_suite.snn`) and returns a
:class:`~bench_suite.snn.network.TrainedNetwork`; the runner evaluates it. No plugin sees the runner, the
store or the terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from bench_suite.core.profiles import Profile
from bench_suite.core.tasks import DatasetBundle, Task

if TYPE_CHECKING:  # types only: the snn toolkit sits above core
    import torch
    from torch import nn

    from bench_suite.core.checks import CheckReport
    from bench_suite.core.neuron import SpikingNeuron
    from bench_suite.snn.calibration import CalibrationCache, Normalized
    from bench_suite.snn.convert import NetworkStructure
    from bench_suite.snn.network import TrainedNetwork

#: (threshold, channels) → a new neuron of the cell's kind; the runner builds it from the neuron plugin
NeuronFactory = Callable[[float, int], "SpikingNeuron"]
#: what a spiking trainer may use from the cell: its neuron, its norm and its time steps
TRAINER_USES = frozenset({"neuron", "norm", "T"})


class Progress(Protocol):
    """Where long stages report progress: ``advance = progress.stage("ASF fine-tune", total)``."""

    def stage(self, description: str, total: int) -> Callable[[int], None]: ...


class NullProgress:
    """Progress sink used when nobody watches (tests, library use)."""

    def stage(self, description: str, total: int) -> Callable[[int], None]:
        return lambda advance=1: None


# -- neurons ----------------------------------------------------------------------------------------


@runtime_checkable
class NeuronPlugin(Protocol):
    """A neuron: a subclass of :class:`bench_suite.core.neuron.SpikingNeuron`.

    One time step is charge → fire → reset, on tensors ``[B, C, *spatial]`` (one call per step; the
    network loops over T):

    - ``fire(v) -> out`` (required): the graded output for membrane potential ``v`` after charging, of
      ``v``'s shape (IF: θ·[v ≥ θ]). Where ``v.requires_grad`` (direct training, BPTT) use
      ``self.spike(v, threshold)``, which carries the neuron's surrogate gradient.
    - ``neuronal_charge(x)`` (optional): update ``self.v`` with input ``x``; default ``v += x``.
    - ``neuronal_reset(out)`` (optional): update ``self.v`` after firing; default subtracts ``out`` (or
      sets v to 0 where it fired, with ``reset="zero"``). The same hook runs with and without autograd.
    - ``level_spikes(out)`` (optional): binary spikes carried by ``out`` (MT: one per fired level).
    - ``recorded_output(out)`` (optional): what ASF accumulates per step (default ``out``).
    - ``finalize_network(network)`` (optional classmethod): called once on a trained network (RS folds
      its scales into the next layers here).

    ``__init__(params=None, threshold=1.0, channels=None)``: ``threshold`` is the layer's θ (1 after weight
    normalization), ``channels`` the layer's channel count (for per-channel state). State registered with
    ``register_memory`` is cleared by SpikingJelly's ``reset_net``. The accumulated input that ASF gates on
    is tracked for you (``accumulated_input()``).
    """

    Params: ClassVar[type | None]

    def fire(self, v: torch.Tensor) -> torch.Tensor: ...


# -- norms ------------------------------------------------------------------------------------------


@runtime_checkable
class NormPlugin(Protocol):
    """A normalization: rescales a trained ANN's weights and/or sets thresholds for conversion.

    ``normalize(structure, calibration, *, cache=None, make_neuron=None) -> Normalized``:

    - ``structure`` (:class:`~bench_suite.snn.convert.NetworkStructure`): the traced ANN: ``graph`` (an
      ``fx.GraphModule``, not to be modified), ``layers`` (each weighted layer with the activation sites
      feeding each part of its input channels and the ReLU after it), ``sites`` (ReLU node names in
      execution order), ``pools``, ``concats``, ``channels``;
    - ``calibration``: a batch of training inputs ``[N, C, *spatial]``;
    - ``cache``: a :class:`~bench_suite.snn.calibration.CalibrationCache` (or None) for values that are
      expensive to compute; ``make_neuron``: the cell's :data:`NeuronFactory`, for norms that simulate.

    It returns a :class:`~bench_suite.snn.calibration.Normalized`: a rescaled copy of the graph, the
    threshold of each neuron site (a ReLU or pool node name; missing sites get 1) and the values it
    found (``scales``, stored with the cell). The toolkit in :mod:`bench_suite.snn.calibration` has what
    the built-ins use: ``percentile_scales`` (λ per site), ``rescale`` (W·part factor / λ_out),
    ``balance_thresholds``.
    """

    Params: ClassVar[type | None]

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, *, cache: CalibrationCache | None = None,
        make_neuron: NeuronFactory | None = None,
    ) -> Normalized: ...


# -- trainers ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainerContext:
    """Everything a trainer may use for one cell; built by the runner, handed to ``Trainer.run``.

    ``get_ann(loss=None)`` returns the cell's trained ANN (trained once per dataset × model × seed ×
    profile × loss and cached); ``make_neuron`` and ``norm`` are None where the trainer does not use them
    (its ``uses``). Trainers add per-epoch curves with :meth:`log_curve` and anything worth storing with
    the cell to ``info`` (JSON-able values).
    """

    bundle: DatasetBundle
    profile: Profile
    model_plugin: ModelPlugin
    get_ann: Callable[..., nn.Module]
    make_neuron: NeuronFactory | None
    norm: NormPlugin | None
    seed: int = 0
    time_steps: int = 0
    title: str = "cell"  # names the cell in messages
    calibration_cache: CalibrationCache | None = None
    progress: Progress = dataclasses.field(default_factory=NullProgress)
    curves: list[tuple[str, int, str, float]] = dataclasses.field(default_factory=list)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: where the cell computes (a torch.device; get_ann's model and make_neuron's neurons are already there)
    device: Any = "cpu"
    #: "fp32", "bf16" or "fp16": autocast for training and simulation (see bench_suite.snn.training)
    precision: str = "fp32"
    #: ``with ctx.stage("calibration"): ...`` times a stage and its peak memory (the runner sets it)
    stage: Callable[[str], Any] = dataclasses.field(default=lambda name: contextlib.nullcontext())

    @property
    def task(self) -> Task:
        return self.bundle.task

    def log_curve(self, stage: str, epoch: int, metric: str, value: float) -> None:
        self.curves.append((stage, epoch, metric, float(value)))


@runtime_checkable
class TrainerPlugin(Protocol):
    """A training method: ``run(ctx: TrainerContext) -> TrainedNetwork``.

    ``uses`` (a frozenset, subset of {"neuron", "norm", "T"}) says which grid options make its cells
    differ: the ANN trainer uses none (one cell per dataset × model × seed), ``conv`` and ``asf`` use all
    three, ``dt`` and ``three-stage`` neuron and T. The returned
    :class:`~bench_suite.snn.network.TrainedNetwork` holds the ANN (``time_steps`` 0) or a
    :class:`~bench_suite.snn.network.SpikingNetwork` and the T it is evaluated at; ``stages`` may hold
    intermediate networks that are scored too (metrics ``stage/…``).

    Optional: ``ann_losses() -> tuple`` names the ANNs (by training loss, None for the task's default)
    the trainer will ask ``ctx.get_ann`` for (default ``(None,)``; a direct trainer returns ``()``), so a
    distributed run trains each ANN once, in its own task, before the cells that need it. Long stages
    are wrapped in ``with ctx.stage("calibration"):`` / ``ctx.stage("fine-tune")`` to be timed and their
    peak memory recorded. Work on ``ctx.device`` (``TrainingPatches.for_cell(ctx)`` puts the data there)
    and under ``MixedPrecision.for_cell(ctx)`` for ``--precision``.
    """

    Params: ClassVar[type | None]
    uses: ClassVar[frozenset[str]]

    def run(self, ctx: TrainerContext) -> TrainedNetwork: ...


# -- datasets ---------------------------------------------------------------------------------------


@runtime_checkable
class DatasetPlugin(Protocol):
    """A dataset: ``load(data_root, profile) -> DatasetBundle``.

    ``profile`` is ``"smoke"``, ``"quick"`` or ``"paper"`` (a dataset may cap its sample counts by it).
    The :class:`~bench_suite.core.tasks.DatasetBundle` holds the :class:`~bench_suite.core.tasks.Task`
    (segmentation with ``n_classes`` or denoising with ``noise_sigma``; ``spatial_dims`` 2 or 3), the
    train and test :class:`~bench_suite.core.tasks.Sample` lists (unique ``id``; ``image`` float32
    ``[C, *spatial]`` in [0, 1] (z-scored for volumes); ``target`` int64 class ids ``[*spatial]`` in
    ``0 … n_classes−1`` for segmentation, None for denoising; optional bool ``fov``), and the training
    patch side (a multiple of the model's ``input_multiple()``), and optionally ``test_tiling`` (a
    :class:`~bench_suite.core.tasks.Tiling`: test images run as tiles of that side and stride, 2-D only,
    the side a multiple of the model's ``input_multiple()``; None: whole padded images).

    Optional: ``spatial_dims`` (class attribute, 3 makes the CLI pick the 3-D U-Net), ``FOLDERS``,
    ``candidates(data_root) -> list[Path]`` and ``HOW_TO_GET`` (where it is looked for and how to get it:
    ``bench-suite data info``), ``check(data_root) -> CheckReport`` (``bench-suite data check``; without
    it the dataset is checked by loading it), ``profile_settings`` (class attribute ``{profile: {setting:
    value}}``: what the dataset changes in a profile, given as ``--set`` values, which still win; e.g. a
    multi-class dataset's quick ANN schedule).
    """

    Params: ClassVar[type | None]

    def load(self, data_root: Path, profile: str) -> DatasetBundle: ...


class CheckableDataset(Protocol):
    def check(self, data_root: Path) -> CheckReport: ...


# -- models -----------------------------------------------------------------------------------------


@runtime_checkable
class ModelPlugin(Protocol):
    """A model: ``build(task, profile_width, out_channels=None) -> nn.Module`` and ``input_multiple()``.

    The module maps ``[N, task.in_channels, *spatial]`` to ``[N, out_channels or task.out_channels,
    *spatial]`` for every side that is a multiple of ``input_multiple()``. To be convertible to a
    spiking network it must be traceable by ``torch.fx`` and made of weighted layers (conv /
    ConvTranspose) each followed by one ``nn.ReLU`` module, average pools and channel concatenations,
    ending in a weighted head without ReLU (see :func:`bench_suite.snn.convert.analyse`).
    ``profile_width`` is the profile's base width (a model parameter may override it).
    """

    Params: ClassVar[type | None]

    def build(self, task: Task, profile_width: int, out_channels: int | None = None) -> nn.Module: ...

    def input_multiple(self) -> int: ...


# -- checking -------------------------------------------------------------------------------------------

PROTOCOLS: dict[str, type] = {
    "neuron": NeuronPlugin, "norm": NormPlugin, "trainer": TrainerPlugin, "dataset": DatasetPlugin,
    "model": ModelPlugin,
}
#: required methods and the parameters each must accept (by name, positionally or as keyword)
_REQUIRED_METHODS: dict[str, dict[str, Sequence[str]]] = {
    "neuron": {"fire": ("v",)},
    "norm": {"normalize": ("structure", "calibration", "cache", "make_neuron")},
    "trainer": {"run": ("ctx",)},
    "dataset": {"load": ("data_root", "profile")},
    "model": {"build": ("task", "profile_width", "out_channels"), "input_multiple": ()},
}


def _accepts(function: Callable, names: Sequence[str]) -> list[str]:
    """The names in ``names`` that ``function`` (a method, self excluded) cannot take."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []
    if parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return []
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_var_positional = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    by_name = {p.name for p in parameters if p.kind is not p.POSITIONAL_ONLY}
    missing = []
    for index, name in enumerate(names):
        if name in by_name:
            continue
        if index < len(positional) or has_var_positional:
            continue
        missing.append(name)
    return missing


def contract_problems(kind: str, obj: Any) -> list[str]:
    """What ``obj`` (a plugin class) lacks to be a ``kind`` plugin; empty when it meets the contract."""
    problems: list[str] = []
    if not isinstance(obj, type):
        return [f"it is a {type(obj).__name__}, not a class"]
    if not hasattr(obj, "Params"):
        problems.append("it has no Params attribute (a frozen dataclass of its parameters, or None)")
    else:
        params = obj.Params
        if params is not None and not dataclasses.is_dataclass(params):
            problems.append(f"its Params ({params!r}) is not a dataclass")
    if kind == "neuron":
        from bench_suite.core.neuron import SpikingNeuron

        if not issubclass(obj, SpikingNeuron):
            problems.append("it does not subclass bench_suite.core.neuron.SpikingNeuron")
        elif obj.fire is SpikingNeuron.fire:
            problems.append("it does not implement fire(v)")
    for method, names in _REQUIRED_METHODS.get(kind, {}).items():
        function = getattr(obj, method, None)
        if function is None or not callable(function):
            problems.append(f"it has no {method}({', '.join(names)}) method")
            continue
        missing = _accepts(function, names)
        if missing:
            problems.append(f"its {method} does not accept {', '.join(missing)}")
    if kind == "trainer":
        uses = getattr(obj, "uses", None)
        if not isinstance(uses, (frozenset, set)) or not set(uses) <= TRAINER_USES:
            problems.append(f"its uses ({uses!r}) is not a frozenset of {sorted(TRAINER_USES)}")
    return problems
