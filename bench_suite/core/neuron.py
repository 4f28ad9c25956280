"""What every neuron plugin is: a SpikingJelly ``SimpleBaseNode`` with graded output and statistics.

A time step is charge → fire → reset (SpikingJelly's split), and these three are the hooks a neuron
overrides: ``neuronal_charge(x)`` (default ``v += x``), ``fire(v) -> out`` (the graded output: IF θ·spike,
MT the sum of fired levels) and ``neuronal_reset(out)`` (default: subtract the output, or set v to 0
where the neuron fired). A subclass overrides ``fire`` and whatever else differs; if its output is not
one binary spike it also overrides ``level_spikes``. The same hooks run with and without autograd: the
in-place fast paths of the built-ins (``_charge_in_place``, ``_reset_in_place``) are used only by the
class that defines them beside the hook they mirror, so an override of a hook is never bypassed.

The same module serves these modes:
- ``simulate``: one call = one time step (single-step mode; the network loops over T, which on 2 CPU
  cores is faster than folding T into the batch);
- ``flow``: the ASF pass — one non-temporal call whose forward value is the output rate recorded by the
  preceding simulation and whose gradient is the identity gated by (accumulated input > 0);
- reduced precision: with ``output_dtype`` set (``SpikingNetwork.with_precision``) the membrane stays
  fp32 and only the output, exact in bf16 for the levels used, is handed on in that dtype;
- recording: with ``record`` true every step adds to the accumulated output (and, where it cannot be
  read off the membrane, the accumulated input) that ASF needs; with ``record == "stats"`` (an
  evaluation) instead to the event and spike counters of the efficiency accounting, and to
  ``event_maps``: per spatial shape, the events at each position summed over batch, channels and steps.
  The maps are not reset with the membrane (they add up over every batch of an evaluation);
  ``bench_suite.snn.efficiency`` reads them to count synaptic operations per position.
"""

from __future__ import annotations

import dataclasses

import torch

from bench_suite.core.errors import PluginContractError
from bench_suite.core.requirements import spikingjelly
from bench_suite.core.surrogates import DEFAULT_ALPHA, SurrogateName, make_surrogate

SimpleBaseNode = spikingjelly("activation_based.neuron").SimpleBaseNode
REDUCED_PRECISION = (torch.float16, torch.bfloat16)


@dataclasses.dataclass(frozen=True)
class SurrogateParams:
    """Parameters every neuron shares: the surrogate gradient used in direct training / BPTT."""

    surrogate: SurrogateName = "sigmoid"
    alpha: float = 0.0  # 0: the surrogate's default (sigmoid 4, atan 2, rectangular 1, triangle 0.3)

    def __post_init__(self) -> None:
        if self.surrogate not in DEFAULT_ALPHA:
            raise ValueError(f"surrogate must be one of {', '.join(DEFAULT_ALPHA)}, got '{self.surrogate}'")
        if self.alpha < 0:
            raise ValueError(f"alpha must be positive (0 = the surrogate's default), got {self.alpha}")


class _GatedFlow(torch.autograd.Function):
    """Forward: the recorded output rate; backward: the incoming gradient where the input was positive."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rate: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate)
        return rate.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (gate,) = ctx.saved_tensors
        return grad * gate, None, None


class SpikingNeuron(SimpleBaseNode):
    """Base class of bench-suite neurons (not registered itself); see the module docstring."""

    Params = None
    #: who made this neuron, for error messages (the runner sets e.g. "neuron 'lif' (bench-suite-example)")
    plugin_label = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        _set_paths(cls)

    def __init__(
        self, params=None, threshold: float = 1.0, reset: str = "subtract", channels: int | None = None
    ) -> None:
        params = params if params is not None else SurrogateParams()
        super().__init__(
            v_threshold=float(threshold), v_reset=None if reset == "subtract" else 0.0,
            surrogate_function=make_surrogate(getattr(params, "surrogate", "sigmoid"), getattr(params, "alpha", 0.0)),
            step_mode="s",
        )
        self.params = params
        self.channels = channels
        self.mode = "simulate"
        self.record = False
        # None: outputs in the membrane's dtype (fp32); else the dtype the next layer computes in (a
        # bf16 simulation): levels like 0.25·k are exact there, while v itself stays fp32
        self.output_dtype: torch.dtype | None = None
        self.register_memory("acc_in", 0.0)
        self.register_memory("acc_out", 0.0)
        self.register_memory("events", 0.0)
        self.register_memory("spikes", 0.0)
        self.register_memory("steps", 0)

    # -- dynamics: the hooks ----------------------------------------------------------------------
    def fire(self, v: torch.Tensor) -> torch.Tensor:
        """Graded output for membrane potential ``v`` (after charging). Subclasses implement."""
        raise NotImplementedError

    def spike(self, v: torch.Tensor, threshold: float) -> torch.Tensor:
        """H(v − threshold) with the surrogate gradient (used where autograd is on)."""
        return self.surrogate_function((v - threshold) / threshold)

    def level_spikes(self, out: torch.Tensor) -> torch.Tensor:
        """Number of binary spikes carried by ``out`` (one per fired level); default: one per event."""
        return (out != 0).sum()

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v + x

    def neuronal_reset(self, out: torch.Tensor) -> None:
        if self.v_reset is None:
            self.v = self.v - out
        else:
            self.v = torch.where(out != 0, torch.zeros_like(self.v), self.v)

    def recorded_output(self, out: torch.Tensor) -> torch.Tensor:
        """What ASF accumulates per step (the output itself, unless a neuron scales it afterwards)."""
        return out

    @classmethod
    def finalize_network(cls, network) -> None:
        """Called once on a trained network before inference (RS folds its scales here)."""

    @classmethod
    def converted_threshold(cls, threshold: float, params) -> float:
        """The threshold this neuron takes in a converted network whose normalization (or threshold
        balancing) set ``threshold`` as the layer's unit; default: that unit (IF fires θ, MT its levels
        of θ). A neuron whose outputs span several units rescales here (ML: θ/K)."""
        return threshold

    # -- one step ---------------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "flow":
            return self.flow_output(x)
        if x.dtype in REDUCED_PRECISION:
            # under autocast the convolutions hand on bf16/fp16: membranes and levels stay exact in fp32
            x = x.float()
        if torch.is_grad_enabled():
            self.neuronal_charge(x)
            out = self._fire_checked(x)
            self.neuronal_reset(out)
        else:
            out = self._step_no_grad(x)
        if self.record:
            self._record(x, out)
        return out

    def _step_no_grad(self, x: torch.Tensor) -> torch.Tensor:
        """The same step without autograd, in place where the class allows it (no new tensor for v)."""
        if not torch.is_tensor(self.v):
            # first step: v is the float 0.0, so this makes a new (fp32) tensor
            self.neuronal_charge(x)
        elif self._fast_charge:
            self._charge_in_place(x)
        else:
            self.neuronal_charge(x)
        out = self._fire_checked(x)
        if self._fast_reset:
            self._reset_in_place(out)
        else:
            self.neuronal_reset(out)
        return out if self.output_dtype is None else out.to(self.output_dtype)

    def _fire_checked(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fire(self.v)
        if out.shape != x.shape:
            # caught here, not three layers later as a convolution's size error naming neither
            raise PluginContractError(
                f"{self.plugin_label or 'neuron ' + type(self).__name__} returned an output of shape "
                f"{tuple(out.shape)} for an input of shape {tuple(x.shape)}; a neuron's output must have its "
                "input's shape"
            )
        return out

    def _charge_in_place(self, x: torch.Tensor) -> None:
        self.v.add_(x)

    def _reset_in_place(self, out: torch.Tensor) -> None:
        if self.v_reset is None:
            self.v.sub_(out)
        else:
            self.v.masked_fill_(out != 0, 0.0)

    # -- what ASF and the efficiency accounting record ---------------------------------------------
    def _record(self, x: torch.Tensor, out: torch.Tensor) -> None:
        if self.record != "stats":  # the sums ASF needs; an evaluation's statistics do not (2 passes per step)
            if not self._sums_from_membrane():
                self.acc_in = x.float().clone() if self.steps == 0 else self.acc_in.add_(x)
            recorded = self.recorded_output(out)
            self.acc_out = recorded.clone() if self.steps == 0 else self.acc_out.add_(recorded)
        self.steps = self.steps + 1
        if self.record == "stats":
            # events per position: count over the channels (innermost channels-last) in int16, then over the
            # batch: 3× cheaper than count_nonzero(dim=1) (7.7 vs 24 ms on 128×16×48×48, 2 threads), which
            # made the statistics cost twice the simulation itself
            if out.dim() > 2:
                narrow = torch.int16 if out.shape[1] < 2**15 else torch.int64
                per_position = out.ne(0).sum(dim=1, dtype=narrow).sum(0, dtype=torch.int64)
            else:
                per_position = torch.count_nonzero(out)
            events = per_position.sum()
            self.events = self.events + events
            # a neuron that keeps the default fires one binary spike per event: no second pass over out
            self.spikes = self.spikes + (events if self._spike_per_event else self.level_spikes(out))
            maps = self.__dict__.setdefault("event_maps", {})
            shape = tuple(out.shape[2:])
            # out of place: the maps may be inference tensors, and a later call may run outside inference mode
            maps[shape] = maps[shape] + per_position if shape in maps else per_position.clone()

    def flow_output(self, x: torch.Tensor) -> torch.Tensor:
        """ASF pass: the recorded output rate forward, the identity gated by (Σ input > 0) backward."""
        return _GatedFlow.apply(x, self.acc_out / self.steps, self.accumulated_input() > 0)

    def _sums_from_membrane(self) -> bool:
        return self._input_from_membrane and self.v_reset is None

    def accumulated_input(self) -> torch.Tensor:
        """Σ over the recorded steps of the input this neuron received (what the ASF gate reads)."""
        return self.v + self.acc_out if self._sums_from_membrane() else self.acc_in

    def extra_repr(self) -> str:
        reset = "subtract" if self.v_reset is None else "zero"
        return f"threshold={self.v_threshold}, reset={reset}, params={self.params}"


def _owner(cls: type, name: str) -> type | None:
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def _set_paths(cls: type) -> None:
    """Which fast paths the class may take, decided once per class.

    An in-place variant is used only where the class that defines it also defines the hook it mirrors,
    so a subclass that overrides a hook alone gets that hook on both paths. Σ input = v + Σ output holds
    exactly when charge adds the input, reset subtracts the output and ASF records that output; otherwise
    the input is summed as it arrives."""
    cls._fast_charge = _owner(cls, "neuronal_charge") is _owner(cls, "_charge_in_place")
    cls._fast_reset = _owner(cls, "neuronal_reset") is _owner(cls, "_reset_in_place")
    cls._spike_per_event = _owner(cls, "level_spikes") is SpikingNeuron
    cls._input_from_membrane = all(
        _owner(cls, name) is SpikingNeuron for name in ("neuronal_charge", "neuronal_reset", "recorded_output")
    )


_set_paths(SpikingNeuron)
