"""What every neuron plugin is: a SpikingJelly ``SimpleBaseNode`` with graded output and statistics.

A time step is charge → fire → reset (SpikingJelly's split): ``v += x``; ``fire`` maps the membrane
potential to the graded output (IF: θ·spike; MT: the sum of fired levels); reset subtracts the output
(or sets v to 0 where the neuron fired). A subclass overrides ``fire`` and, if its output is not one
binary spike, ``level_spikes``.

The same module serves three modes:
- ``simulate``: one call = one time step (single-step mode; the runner loops over T, which on 2 CPU
  cores is faster than folding T into the batch);
- ``flow``: the ASF pass — one non-temporal call whose forward value is the output rate recorded by the
  preceding simulation and whose gradient is the identity gated by (accumulated input > 0);
- reduced precision: with ``output_dtype`` set (``SpikingNetwork.with_precision``) the membrane stays
  fp32 and only the output, exact in bf16 for the levels used, is handed on in that dtype;
- recording: with ``record`` true every step adds to the accumulated output that ASF needs; with
  ``record == "stats"`` also to the event and spike counters of the efficiency accounting.
"""

from __future__ import annotations

import dataclasses

import torch
from spikingjelly.activation_based.neuron import SimpleBaseNode

from bench_suite.core.surrogates import DEFAULT_ALPHA, SurrogateName, make_surrogate


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
    """Base class of bench-suite neurons (not registered itself)."""

    Params = None
    #: True when reset subtracts exactly the output, so Σ input = v + Σ output need not be recorded
    subtracts_output = True

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

    # -- dynamics ---------------------------------------------------------------------------------
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

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "flow":
            return self.flow_output(x)
        if torch.is_grad_enabled():
            self.neuronal_charge(x)
            out = self.fire(self.v)
            self.neuronal_reset(out)
        else:
            out = self._step_in_place(x)
        if self.record:
            self._record(x, out)
        return out

    def _step_in_place(self, x: torch.Tensor) -> torch.Tensor:
        """The same step without autograd, updating v in place (no new tensor per step for v)."""
        if torch.is_tensor(self.v):
            self.neuronal_charge_(x)
        else:
            # first step: v is the float 0.0, so this makes a new tensor (fp32 even for bf16 inputs)
            self.neuronal_charge(x if self.output_dtype is None else x.float())
        out = self.fire(self.v)
        self.neuronal_reset_(out)
        return out if self.output_dtype is None else out.to(self.output_dtype)

    def neuronal_reset_(self, out: torch.Tensor) -> None:
        """In-place reset; a neuron whose ``neuronal_reset`` differs overrides this one too."""
        if self.v_reset is None:
            self.v.sub_(out)
        else:
            self.v.masked_fill_(out != 0, 0.0)

    def neuronal_charge_(self, x: torch.Tensor) -> None:
        """In-place charge; a neuron whose ``neuronal_charge`` differs overrides this one too."""
        if type(self).neuronal_charge is not SpikingNeuron.neuronal_charge:
            self.neuronal_charge(x)
        else:
            self.v.add_(x)

    def _record(self, x: torch.Tensor, out: torch.Tensor) -> None:
        # With reset by subtraction the accumulated input is v + Σ out, so it need not be summed.
        if not self._input_from_v():
            self.acc_in = self.acc_in + x
        recorded = self.recorded_output(out)
        self.acc_out = recorded.clone() if self.steps == 0 else self.acc_out.add_(recorded)
        self.steps = self.steps + 1
        if self.record == "stats":
            self.events = self.events + (out != 0).sum()
            self.spikes = self.spikes + self.level_spikes(out)

    def recorded_output(self, out: torch.Tensor) -> torch.Tensor:
        """What ASF accumulates per step (the output itself, unless a neuron scales it afterwards)."""
        return out

    def flow_output(self, x: torch.Tensor) -> torch.Tensor:
        """ASF pass: the recorded output rate forward, the identity gated by (Σ input > 0) backward."""
        return _GatedFlow.apply(x, self.acc_out / self.steps, self.accumulated_input() > 0)

    def _input_from_v(self) -> bool:
        return self.subtracts_output and self.v_reset is None

    def accumulated_input(self) -> torch.Tensor:
        return self.v + self.acc_out if self._input_from_v() else self.acc_in

    @classmethod
    def finalize_network(cls, network) -> None:
        """Called once on a trained network before inference (RS folds its scales here)."""

    def extra_repr(self) -> str:
        reset = "subtract" if self.v_reset is None else "zero"
        return f"threshold={self.v_threshold}, reset={reset}, params={self.params}"
