"""Efficiency accounting of a converted network: fan-out, synaptic operations, ANN MACs and energy.

Counting policy
---------------
*Events and spikes.* A neuron with ``record="stats"`` counts ``events`` (non-zero outputs, summed over
steps and elements) and ``spikes`` (binary spikes: an MT output counts one per fired level, ML one per
fired unit, IF one per event).

*Fan-out.* ``fan_out`` gives, for every neuron of the body, the operations one non-zero output element
triggers in one time step, found from the fx graph (through concatenations and average pools):

- ``synapses``: accumulates in the weighted layers it feeds. For a conv this is C_out/groups times the
  number of (output position, kernel tap) pairs the element takes part in, averaged over the input
  positions — taps that fall on zero padding, and ConvTranspose outputs cropped by its ``padding``,
  receive nothing from a real input and are not counted (e.g. k3 padding 1 on 4×4: (4·4 + 8·6 + 4·9)/16
  = 6.25 positions per channel, not 9). This is the same per-position reach that spikingjelly's
  ``SynOpCounter`` uses for binary inputs. Through a concatenation the consumer's per-element fan-out
  applies to each part's channels unchanged (groups = 1: every input channel reaches all C_out).
- ``pool_adds``: an average pool costs k^d additions per output, i.e. out·∏k / in per input element
  (exactly 1 for the U-Net's non-overlapping 2×2 / 2×2×2 pools); the pooled value then charges a
  re-spiking neuron, which is a membrane update, not a synapse.
- ``readout_adds``: an element of the body's output is added to the rate accumulator: 1 per event. The
  head itself is applied once per simulation to the rate and is counted as dense MACs, not per event.

Only the position-averaged fan-out can be used because the neurons count events per layer, not per
position: ``synops`` is exact when firing is spatially uniform, and otherwise differs only by the border
positions' share (for k3 on 48×48 the average reach is (3·48 − 2)²/48² ≈ 8.75 against 9 inside).

*Graded events.* ``synops`` = events × fan-out: an MT/ML output of any level is ONE accumulate per
synapse — the level set is known at the sender, so a receiver can add a pre-scaled weight (one copy of
w per level, or w shifted for halving levels) in one AC. ``synops_binary`` = spikes × fan-out: what a
chip that only carries binary spikes would execute, one AC per fired level. Both are totals over
samples and T; ``*_per_sample`` divide by the samples.

Not counted: membrane updates (charge, fire, reset), the per-step bias adds (one per neuron and step,
part of the neuron update), and anything on the ANN side except weighted-layer MACs.

*ANN MACs* are the usual dense count (padding taps included): conv = output numel × C_in/groups × ∏k,
ConvTranspose = input numel × C_out/groups × ∏k.

*Energy* (Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 32-bit float): a multiply is
3.7 pJ and an add 0.9 pJ, so MAC = 4.6 pJ and AC = 0.9 pJ. ANN = all MACs × 4.6 pJ. SNN = the encoder
(first conv, non-spiking, computed once for all T) and the head (once on the rate) as MACs, plus
synops × 0.9 pJ.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import fx, nn
from torch.nn import functional as F

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.neuron import SpikingNeuron
from bench_suite.snn.convert import POOL_TYPES
from bench_suite.snn.network import SpikingNetwork

#: Horowitz 2014, 45 nm, 32-bit float: multiply 3.7 pJ + add 0.9 pJ
MAC_PJ = 4.6
AC_PJ = 0.9

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
WEIGHTED = CONV_TYPES + TRANSPOSED_TYPES


@dataclasses.dataclass(frozen=True)
class FanOut:
    """Operations one non-zero output element of a neuron triggers per time step (averaged over positions)."""

    synapses: float = 0.0  # accumulates in the weighted layers it feeds
    pool_adds: float = 0.0  # additions inside the average pools it feeds
    readout_adds: float = 0.0  # 1 when it is the body output, added to the rate accumulator
    consumers: tuple[str, ...] = ()  # the weighted layers and pools reached, for reports

    @property
    def total(self) -> float:
        return self.synapses + self.pool_adds + self.readout_adds


# -- shapes ---------------------------------------------------------------------------------------------
class _Shapes(fx.Interpreter):
    """Records every node's output shape, passing values through neurons unchanged.

    Neurons only preserve shapes, so skipping them gives the same shapes as ShapeProp without touching
    their membrane state or statistics (the caller's network may hold the counts being accounted).
    """

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.shapes: dict[str, torch.Size] = {}

    def call_module(self, target, args, kwargs):
        if isinstance(self.module.get_submodule(target), SpikingNeuron):
            return args[0]
        return super().call_module(target, args, kwargs)

    def run_node(self, node: fx.Node):
        out = super().run_node(node)
        if torch.is_tensor(out):
            self.shapes[node.name] = out.shape
        return out


def _body_shapes(network: SpikingNetwork, example: torch.Tensor):
    """Shapes of one sample: encoder input/output, every body node, and the body output (head input)."""
    x = example[:1].float()
    with torch.no_grad():
        current = network.encoder(x)
        recorder = _Shapes(network.body)
        out = recorder.run(current)
    return x.shape, current.shape, recorder.shapes, out.shape


def _spatial(shape) -> int:
    return math.prod(shape[2:])


def conv_macs(module: nn.Module, in_shape, out_shape) -> int:
    """Dense MACs of one conv / ConvTranspose call per sample (``shape[0]`` is the batch)."""
    kernel = math.prod(module.kernel_size)
    if isinstance(module, TRANSPOSED_TYPES):
        return _spatial(in_shape) * module.in_channels * (module.out_channels // module.groups) * kernel
    return _spatial(out_shape) * module.out_channels * (module.in_channels // module.groups) * kernel


def _reach(module: nn.Module, in_shape, out_shape) -> float:
    """Output positions × taps an input position takes part in, averaged over the input positions.

    Computed by running the layer's geometry with an all-ones input and an all-ones kernel: each output
    value is then the number of real (non-padding) inputs it reads, and their sum over the outputs is
    the sum over the inputs of the pairs each one reaches.
    """
    dims = len(module.kernel_size)
    ones = torch.ones((1, 1, *in_shape[2:]), dtype=torch.float64)
    kernel = torch.ones((1, 1, *module.kernel_size), dtype=torch.float64)
    if isinstance(module, TRANSPOSED_TYPES):
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[dims - 1]
        occupancy = fn(ones, kernel, None, module.stride, module.padding, module.output_padding, 1,
                       module.dilation)
    elif module.padding_mode != "zeros":
        # reflect / replicate / circular padding copies real inputs, so every tap reads one of them
        return _spatial(out_shape) * math.prod(module.kernel_size) / _spatial(in_shape)
    else:
        fn = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
        occupancy = fn(ones, kernel, None, module.stride, module.padding, module.dilation)
    return float(occupancy.sum()) / _spatial(in_shape)


def consumer_fan_out(module: nn.Module, in_shape, out_shape) -> float:
    """Accumulates one non-zero input element of ``module`` triggers (exact average over positions)."""
    return _reach(module, in_shape, out_shape) * module.out_channels / module.groups


def _multiplicity(user: fx.Node, node: fx.Node) -> int:
    """How many times ``node`` appears among ``user``'s inputs (a cat may list a branch twice)."""
    found: list[fx.Node] = []
    fx.node.map_arg((user.args, user.kwargs), lambda n: found.append(n) or n)
    return sum(1 for n in found if n is node)


def _is_cat(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (torch.cat, torch.concat)


def fan_out(network: SpikingNetwork, example: torch.Tensor) -> dict[str, FanOut]:
    """Per neuron module name of ``network.body``: the operations one non-zero output triggers per step.

    ``example`` is a network input of the evaluated shape (only its first sample is used): fan-outs at
    borders depend on the spatial size.
    """
    _, _, shapes, _ = _body_shapes(network, example)
    gm = network.body
    names = {name for name, _ in network.neurons()}

    def walk(node: fx.Node, found: dict, scale: int = 1) -> None:
        for user in node.users:
            times = scale * _multiplicity(user, node)
            if user.op == "output":
                found["readout"] += times
            elif _is_cat(user):
                walk(user, found, times)  # same elements, now channels of the cat's consumers
            elif user.op == "call_module" and isinstance(gm.get_submodule(user.target), WEIGHTED):
                module = gm.get_submodule(user.target)
                in_shape, out_shape = shapes[node.name], shapes[user.name]
                found["synapses"] += times * consumer_fan_out(module, in_shape, out_shape)
                found["consumers"].append(user.target)
            elif user.op == "call_module" and isinstance(gm.get_submodule(user.target), POOL_TYPES):
                module = gm.get_submodule(user.target)
                kernel = module.kernel_size
                k = math.prod(kernel) if isinstance(kernel, tuple) else kernel ** (len(shapes[user.name]) - 2)
                found["pool_adds"] += times * _spatial(shapes[user.name]) * k / _spatial(shapes[node.name])
                found["consumers"].append(user.target)
                for after in user.users:
                    if not (after.op == "call_module" and after.target in names):
                        raise BenchSuiteError(
                            f"cannot count synaptic operations: pool '{user.target}' feeds '{after.name}' "
                            "instead of a re-spiking neuron"
                        )
            else:
                raise BenchSuiteError(
                    f"cannot count synaptic operations: '{node.name}' feeds '{user.name}' ({user.op} "
                    f"{getattr(user.target, '__name__', user.target)}); only conv, ConvTranspose, "
                    "average pooling, concatenation and the output are supported"
                )

    result: dict[str, FanOut] = {}
    for name in names:
        found = {"synapses": 0.0, "pool_adds": 0.0, "readout": 0, "consumers": []}
        for node in gm.graph.nodes:
            if node.op == "call_module" and node.target == name:
                walk(node, found)
        result[name] = FanOut(found["synapses"], found["pool_adds"], float(found["readout"]),
                              tuple(found["consumers"]))
    return result


def ann_macs(model_or_network: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Dense MACs per sample of every weighted layer, keyed by module name.

    For a :class:`SpikingNetwork` the keys are ``encoder``, the body's module names (the same as in the
    ANN it was converted from) and ``head``; its weighted layers have the ANN's shapes, so the counts
    are the ANN's. For any other module forward hooks count every conv / ConvTranspose call.

    Checked against spikingjelly 2.0.0 ``op_counter.MACCounter`` (tests/test_efficiency.py): its
    ``aten.convolution`` rule gives the same count for Conv and for ConvTranspose (it takes the input
    positions for transposed convs) with any groups, when the input is real-valued. It is not usable as
    the ANN count: it returns 0 for a conv whose input is all in {0, 1} (it takes that for spikes), e.g.
    a dead ReLU layer or a binary image. On the SNN side its ``SynOpCounter`` counts ops only for binary
    inputs (exactly per position, border effects included); a graded MT/ML output, or an IF output θ·s
    with θ ≠ 1, is not binary, so it gets dense MACs and 0 synaptic operations — hence our own count
    from the neurons' events.
    """
    x = example[:1].float()
    if isinstance(model_or_network, SpikingNetwork):
        network = model_or_network
        in_shape, current_shape, shapes, out_shape = _body_shapes(network, x)
        with torch.no_grad():
            head_out = network.head(torch.zeros(out_shape))
        macs = {"encoder": conv_macs(network.encoder, in_shape, current_shape)}
        for node in network.body.graph.nodes:
            if node.op == "call_module" and isinstance(network.body.get_submodule(node.target), WEIGHTED):
                module = network.body.get_submodule(node.target)
                count = conv_macs(module, shapes[node.args[0].name], shapes[node.name])
                macs[node.target] = macs.get(node.target, 0) + count
        macs["head"] = conv_macs(network.head, out_shape, head_out.shape)
        return macs

    model = model_or_network
    macs: dict[str, int] = {}

    def hook(name):
        def record(module, inputs, output):
            macs[name] = macs.get(name, 0) + conv_macs(module, inputs[0].shape, output.shape)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return macs


def synaptic_operations(layer_stats: list[dict], fan_outs: dict[str, FanOut]) -> list[dict]:
    """Copies of ``layer_stats`` with ``fan_out``, ``synops`` (= events × fan-out), ``synops_binary``
    (= spikes × fan-out), both totals over samples and steps, and their ``*_per_sample``."""
    filled = []
    for stats in layer_stats:
        if stats["layer"] not in fan_outs:
            raise BenchSuiteError(
                f"no fan-out for layer '{stats['layer']}': the statistics come from a different network "
                f"than the one analysed (its neurons: {', '.join(sorted(fan_outs)) or 'none'})"
            )
        per_event = fan_outs[stats["layer"]].total
        samples = stats.get("samples", 0)
        row = dict(stats)
        row["fan_out"] = per_event
        row["synops"] = float(stats["events"]) * per_event
        row["synops_binary"] = float(stats["spikes"]) * per_event
        row["synops_per_sample"] = row["synops"] / samples if samples else float("nan")
        row["synops_binary_per_sample"] = row["synops_binary"] / samples if samples else float("nan")
        filled.append(row)
    return filled


def energy(
    ann_macs_total: float, snn_synops: float, first_layer_macs: float, head_macs: float,
    mac_pj: float = MAC_PJ, ac_pj: float = AC_PJ,
) -> dict:
    """Energy estimates in pJ (Horowitz 2014, 45 nm: MAC 4.6 pJ, AC 0.9 pJ).

    ``ann_energy_pj`` = all ANN MACs × MAC; ``snn_energy_pj`` = (encoder MACs, once for all T, + head
    MACs, once on the rate) × MAC + synops × AC. ``energy_ratio`` = SNN / ANN (below 1: the SNN is
    cheaper). Pass per-sample counts for per-sample energy.
    """
    ann = ann_macs_total * mac_pj
    dense = (first_layer_macs + head_macs) * mac_pj
    sparse = snn_synops * ac_pj
    snn = dense + sparse
    return {
        "ann_energy_pj": ann, "snn_energy_pj": snn, "snn_mac_energy_pj": dense, "snn_ac_energy_pj": sparse,
        "energy_ratio": snn / ann if ann else float("nan"),
    }


def cell_efficiency(
    network: SpikingNetwork, example: torch.Tensor, layer_stats: list[dict],
) -> tuple[list[dict], dict]:
    """Layer statistics with synaptic operations, and a per-sample summary of one run cell.

    ``example`` must have the shape the statistics were gathered at (the padded test input). Summary:
    ``ann_macs``, ``snn_synops_per_sample``, ``snn_synops_binary_per_sample``, ``ann_energy_pj``,
    ``snn_energy_pj`` (both per sample) and ``energy_ratio`` = SNN / ANN. The encoder counts once, or
    T times when the network has an input coding (its first conv then runs every step).
    """
    filled = synaptic_operations(layer_stats, fan_out(network, example))
    macs = ann_macs(network, example)
    total_macs = sum(macs.values())
    synops = sum(row["synops_per_sample"] for row in filled)
    synops_binary = sum(row["synops_binary_per_sample"] for row in filled)
    # With an input coding (Poisson / ternary spikes, bench_suite.snn.encoders) the encoder runs on each
    # step's coded input instead of once: counted as T dense passes, an upper bound, because the input
    # spikes are not recorded and so cannot be counted as events.
    coded = getattr(network, "input_coding", None) is not None
    encoder_runs = int(layer_stats[0]["time_steps"]) if coded and layer_stats else 1
    joules = energy(total_macs, synops, encoder_runs * macs["encoder"], macs["head"])
    summary = {
        "ann_macs": total_macs, "snn_synops_per_sample": synops,
        "snn_synops_binary_per_sample": synops_binary, "ann_energy_pj": joules["ann_energy_pj"],
        "snn_energy_pj": joules["snn_energy_pj"], "energy_ratio": joules["energy_ratio"],
    }
    return filled, summary
