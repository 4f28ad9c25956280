"""Efficiency accounting of a converted network: fan-out, synaptic operations, ANN MACs and energy.

Counting policy
---------------
*Events and spikes.* A neuron with ``record="stats"`` counts ``events`` (non-zero outputs, summed over
steps and elements) and ``spikes`` (binary spikes: an MT output counts one per fired level, ML one per
fired unit, IF one per event).

*Fan-out.* ``fan_out_map`` gives, for every neuron of the body and every position of its output, the
operations one non-zero output element there triggers in one time step, found from the fx graph (through
concatenations and average pools); ``fan_out`` is its average over positions:

- ``synapses``: accumulates in the weighted layers it feeds. For a conv this is C_out/groups times the
  number of (output position, kernel tap) pairs the element takes part in — taps that fall on zero
  padding, and ConvTranspose outputs cropped by its ``padding``, receive nothing from a real input and are
  not counted (e.g. k3 padding 1 on 4×4: a corner input reaches 4 positions per channel, an edge one 6, an
  inner one 9; on average (4·4 + 8·6 + 4·9)/16 = 6.25). The per-position reach is the gradient of the
  summed layer geometry run on ones with a ones kernel (one transposed convolution per consumer).
  Through a concatenation the consumer's per-element fan-out applies to each part's channels unchanged
  (groups = 1: every input channel reaches all C_out).
- ``pool_adds``: an average pool costs k^d additions per output, i.e. out·∏k / in per input element
  (exactly 1 for the U-Net's non-overlapping 2×2 / 2×2×2 pools); the pooled value then charges a
  re-spiking neuron, which is a membrane update, not a synapse.
- ``readout_adds``: an element of the body's output is added to the rate accumulator: 1 per event. The
  head itself is applied once per simulation to the rate and is counted as dense MACs, not per event.

*Per position, as executed.* During evaluation each neuron keeps an event map (events per position,
summed over batch, channels and steps: ``SpikingNeuron.event_maps``), so ``synops`` = Σ over positions of
event map × fan-out map — what a per-position counter such as SpikingJelly's ``SynOpCounter`` counts on
the same binary spikes (tests/snn/test_efficiency.py checks both, and a hand count for graded spikes).
The layer's ``fan_out`` is then the event-weighted fan-out (synops / events). Events × the *average*
fan-out (``synops_uniform``, kept beside it) is exact only for spatially uniform firing; on small or sparse
layers, where firing sits on borders, it is several per cent off. Statistics without event maps (a neuron
recorded by other means) fall back to the average and say so in ``synops_counting``.

*Graded events.* ``synops`` = events × fan-out: an MT/ML output of any level is ONE accumulate per
synapse — the level set is known at the sender, so a receiver can add a pre-scaled weight (one copy of
w per level, or w shifted for halving levels) in one AC. ``synops_binary`` = spikes × the event-weighted
fan-out: what a chip that only carries binary spikes would execute, one AC per fired level (exact for IF,
whose spikes are its events; for MT/ML it assumes the levels per event do not depend on the position,
since spikes are counted per layer). Both are totals over samples and T; ``*_per_sample`` divide by the
samples.

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


def consumer_fan_out(module: nn.Module, in_shape, out_shape=None) -> float:
    """Accumulates one non-zero input element of ``module`` triggers, averaged over the input positions
    (:func:`reach_map` gives them per position)."""
    return float(reach_map(module, tuple(in_shape[2:])).mean()) * module.out_channels / module.groups


def _multiplicity(user: fx.Node, node: fx.Node) -> int:
    """How many times ``node`` appears among ``user``'s inputs (a cat may list a branch twice)."""
    found: list[fx.Node] = []
    fx.node.map_arg((user.args, user.kwargs), lambda n: found.append(n) or n)
    return sum(1 for n in found if n is node)


def _is_cat(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (torch.cat, torch.concat)


def _consumers(network: SpikingNetwork) -> dict[str, list[tuple]]:
    """Per neuron: what each of its output elements feeds — ``("weighted", conv, times)``, ``("pool",
    pool, times)`` or ``("readout", None, times)`` — through concatenations (same positions)."""
    gm = network.body
    names = {name for name, _ in network.neurons()}

    def walk(node: fx.Node, found: list, scale: int = 1) -> None:
        for user in node.users:
            times = scale * _multiplicity(user, node)
            if user.op == "output":
                found.append(("readout", None, times))
            elif _is_cat(user):
                walk(user, found, times)  # same elements, now channels of the cat's consumers
            elif user.op == "call_module" and isinstance(gm.get_submodule(user.target), WEIGHTED):
                found.append(("weighted", gm.get_submodule(user.target), times, user.target))
            elif user.op == "call_module" and isinstance(gm.get_submodule(user.target), POOL_TYPES):
                found.append(("pool", gm.get_submodule(user.target), times, user.target))
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

    result = {}
    for name in names:
        found: list = []
        for node in gm.graph.nodes:
            if node.op == "call_module" and node.target == name:
                walk(node, found)
        result[name] = found
    return result


def _geometry(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's wiring on a one-channel input ``x`` with a ones kernel: each output sums the real inputs
    (and, for a pool, each window sums its inputs) it reads."""
    dims = x.dim() - 2
    if isinstance(module, POOL_TYPES):
        kernel, stride = _tuple(module.kernel_size, dims), _tuple(module.stride or module.kernel_size, dims)
        padding = _tuple(module.padding, dims)
        weight = torch.ones((1, 1, *kernel), dtype=x.dtype, device=x.device)
        if getattr(module, "ceil_mode", False):
            # windows that start inside the input but run past its end (padded by zeros) also count
            extra = [(-(n + 2 * p - k) % s) for n, k, s, p in zip(x.shape[2:], kernel, stride, padding, strict=True)]
            x = F.pad(x, [amount for e in reversed(extra) for amount in (0, e)])
        conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
        return conv(x, weight, None, stride, padding)
    weight = torch.ones((1, 1, *module.kernel_size), dtype=x.dtype, device=x.device)
    if isinstance(module, TRANSPOSED_TYPES):
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[dims - 1]
        return fn(x, weight, None, module.stride, module.padding, module.output_padding, 1, module.dilation)
    fn = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    if module.padding_mode != "zeros":
        # reflect / replicate / circular padding copies real inputs: their taps reach those inputs
        x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        return fn(x, weight, None, module.stride, 0, module.dilation)
    return fn(x, weight, None, module.stride, module.padding, module.dilation)


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims


def reach_map(module: nn.Module, spatial: tuple[int, ...]) -> torch.Tensor:
    """Per input position of ``module`` (spatial shape ``spatial``): the (output position, tap) pairs it takes
    part in — for a pool, the windows containing it. float64, shape ``spatial``."""
    # device: the wiring is counted from shapes alone, in float64 on the CPU, whatever device the network is on
    x = torch.ones((1, 1, *spatial), dtype=torch.float64, device="cpu", requires_grad=True)
    with torch.enable_grad():
        _geometry(module, x).sum().backward()
    return x.grad[0, 0].detach()


def fan_out_maps(network: SpikingNetwork, spatial: dict[str, tuple[int, ...]]) -> dict[str, dict[str, torch.Tensor]]:
    """Per neuron, per position of its output at spatial shape ``spatial[name]``: the operations one
    non-zero output element there triggers per step, as ``{"synapses", "pool_adds", "readout_adds"}`` maps."""
    consumers = _consumers(network)
    result = {}
    for name, shape in spatial.items():
        # device: CPU float64 counts, like reach_map's
        maps = {key: torch.zeros(shape, dtype=torch.float64, device="cpu")
                for key in ("synapses", "pool_adds", "readout_adds")}
        for kind, module, times, *_ in consumers[name]:
            if kind == "readout":
                maps["readout_adds"] += times
            elif kind == "pool":
                maps["pool_adds"] += times * reach_map(module, shape)
            else:
                maps["synapses"] += times * reach_map(module, shape) * module.out_channels / module.groups
        result[name] = maps
    return result


def fan_out_map(network: SpikingNetwork, name: str, spatial: tuple[int, ...]) -> torch.Tensor:
    """The total fan-out (synapses + pool adds + readout adds) of neuron ``name`` per output position."""
    return sum(fan_out_maps(network, {name: tuple(spatial)})[name].values())


def fan_out(network: SpikingNetwork, example: torch.Tensor) -> dict[str, FanOut]:
    """Per neuron module name of ``network.body``: the operations one non-zero output triggers per step,
    averaged over the positions of its output at the input shape of ``example`` (only its first sample is
    used: fan-outs at borders depend on the spatial size). :func:`fan_out_maps` gives them per position."""
    _, _, shapes, _ = _body_shapes(network, example)
    gm = network.body
    spatial = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target in {name for name, _ in network.neurons()}:
            spatial[node.target] = tuple(shapes[node.name][2:])
    maps = fan_out_maps(network, spatial)
    consumers = _consumers(network)
    result: dict[str, FanOut] = {}
    for name in {name for name, _ in network.neurons()}:
        found = maps.get(name)
        if found is None:
            result[name] = FanOut()
            continue
        result[name] = FanOut(
            float(found["synapses"].mean()), float(found["pool_adds"].mean()), float(found["readout_adds"].mean()),
            tuple(entry[3] for entry in consumers[name] if entry[0] != "readout"),
        )
    return result


def event_maps(network: SpikingNetwork) -> dict[str, dict[tuple[int, ...], torch.Tensor]]:
    """The per-position event counts the neurons recorded in ``record="stats"`` simulations (see
    :mod:`bench_suite.core.neuron`): layer → spatial shape → events per position."""
    return {name: dict(neuron.__dict__.get("event_maps", {})) for name, neuron in network.neurons()}


def clear_event_maps(network: SpikingNetwork) -> None:
    """Forget the recorded event maps (they add up over every stats simulation of the network)."""
    for _, neuron in network.neurons():
        neuron.__dict__.pop("event_maps", None)


def position_synops(network: SpikingNetwork, maps: dict[str, dict[tuple[int, ...], torch.Tensor]] | None = None,
                    ) -> dict[str, tuple[float, float]]:
    """Per layer with recorded events: ``(Σ events, Σ event map × fan-out map)`` over every recorded shape."""
    maps = event_maps(network) if maps is None else maps
    out = {}
    for name, by_shape in maps.items():
        if not by_shape:
            continue
        events = ops = 0.0
        for shape, counts in by_shape.items():
            fan = fan_out_map(network, name, shape)
            counts = counts.detach().to("cpu", torch.float64)  # maps recorded on an accelerator, too
            events += float(counts.sum())
            ops += float((counts * fan).sum())
        out[name] = (events, ops)
    return out


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
            head_out = network.head(torch.zeros(out_shape, device=x.device))
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


def synaptic_operations(layer_stats: list[dict], fan_outs: dict[str, FanOut],
                        per_event: dict[str, float] | None = None) -> list[dict]:
    """Copies of ``layer_stats`` with ``fan_out``, ``synops`` (= events × fan-out), ``synops_binary``
    (= spikes × fan-out), both totals over samples and steps, and their ``*_per_sample``.

    ``fan_out`` is ``per_event[layer]`` where given — the event-weighted fan-out of the layer's recorded
    event maps, which makes ``synops`` the per-position count — else the position average of ``fan_outs``.
    ``synops_uniform`` (= events × the average fan-out) is kept beside it; ``synops_counting`` says which.
    """
    per_event = per_event or {}
    filled = []
    for stats in layer_stats:
        if stats["layer"] not in fan_outs:
            raise BenchSuiteError(
                f"no fan-out for layer '{stats['layer']}': the statistics come from a different network "
                f"than the one analysed (its neurons: {', '.join(sorted(fan_outs)) or 'none'})"
            )
        uniform = fan_outs[stats["layer"]].total
        exact = per_event.get(stats["layer"])
        fan = uniform if exact is None else exact
        samples = stats.get("samples", 0)
        row = dict(stats)
        row["fan_out"] = fan
        row["fan_out_uniform"] = uniform
        row["synops_counting"] = "per position" if exact is not None else "position average (no event map)"
        row["synops"] = float(stats["events"]) * fan
        row["synops_uniform"] = float(stats["events"]) * uniform
        row["synops_binary"] = float(stats["spikes"]) * fan
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
    network: SpikingNetwork, example: torch.Tensor, layer_stats: list[dict], tiles_per_sample: int = 1,
) -> tuple[list[dict], dict]:
    """Layer statistics with synaptic operations, and a per-sample summary of one run cell.

    With test-time tiling ``example`` is one tile and a sample is ``tiles_per_sample`` tiles: the dense
    MACs are counted on the tile and multiplied; the statistics are already per sample (per image).

    SynOps are counted per position from the event maps the neurons recorded (:func:`position_synops`);
    layers without maps use the position-averaged fan-out at ``example``'s shape, which must then be the
    shape the statistics were gathered at (the padded test input). Summary:
    ``ann_macs``, ``snn_synops_per_sample``, ``snn_synops_binary_per_sample``, ``ann_energy_pj``,
    ``snn_energy_pj`` (both per sample) and ``energy_ratio`` = SNN / ANN. The encoder counts once, or
    T times when the network has an input coding (its first conv then runs every step).
    """
    fans = fan_out(network, example)
    # per position: the event-weighted fan-out of the recorded event maps, times the layer's events (the
    # same Σ map × fan-out when maps and statistics come from one evaluation, as in the runner)
    per_event = {name: (ops / events if events else fans[name].total)
                 for name, (events, ops) in position_synops(network).items()}
    filled = synaptic_operations(layer_stats, fans, per_event)
    macs = {name: count * tiles_per_sample for name, count in ann_macs(network, example).items()}
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
