"""ANN U-Net → spiking network, by rewriting the torch.fx graph of the trained ANN.

``analyse`` traces the ANN once and records, for every weighted layer (conv / ConvTranspose), which
activation sites (ReLU nodes) feed which of its input channels — a concatenation gives one part per
branch, found from the graph and the propagated shapes, never from layer names — and which ReLU
follows it. Norm plugins use this to scale weights; ``build_spiking_network`` then turns every ReLU
into a neuron, re-spikes every average pool with a neuron of the same kind (threshold 1), makes the
first conv a static encoder computed once, and keeps the head non-spiking, applied to the rate.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.neuron import SpikingNeuron
from bench_suite.snn.network import POOL_TYPES, TRANSPOSED_TYPES, WEIGHTED_TYPES, SpikingNetwork


@dataclasses.dataclass(frozen=True)
class InputPart:
    """Input channels ``start:stop`` of a layer came from activation ``site`` (None: the network input)."""

    site: str | None
    start: int
    stop: int


@dataclasses.dataclass(frozen=True)
class WeightedLayer:
    target: str  # module path in the traced graph, e.g. "up_blocks.0.0"
    node: str
    parts: tuple[InputPart, ...]
    concat: str | None  # the cat node that feeds it, if any
    activation: str | None  # the ReLU node after it; None for the head

    @property
    def in_site(self) -> str | None:
        """The single activation site feeding this layer, when its input is not a concatenation."""
        return self.parts[0].site if len(self.parts) == 1 else None


@dataclasses.dataclass
class NetworkStructure:
    graph: fx.GraphModule
    layers: list[WeightedLayer]
    sites: list[str]  # ReLU node names in execution order
    pools: list[str]  # average-pool node names
    concats: list[str]
    channels: dict[str, int] = dataclasses.field(default_factory=dict)  # sites and pools → channels

    @property
    def first(self) -> WeightedLayer:
        return self.layers[0]

    @property
    def head(self) -> WeightedLayer:
        return self.layers[-1]


def trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # tracing errors from arbitrary third-party models
        raise BenchSuiteError(
            f"cannot trace model {type(model).__name__} with torch.fx ({exc}); a convertible model must "
            "have a forward without data-dependent control flow"
        ) from exc


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _channels(node: fx.Node) -> int:
    return int(node.meta["tensor_meta"].shape[1])


def _is_cat(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (torch.cat, torch.concat)


def analyse(model: nn.Module, example: torch.Tensor) -> NetworkStructure:
    """Trace ``model`` and find its weighted layers, activation sites, pools and concatenation parts."""
    gm = trace(copy.deepcopy(model).eval())
    with torch.no_grad():
        ShapeProp(gm).propagate(example[:1])

    def sources(node: fx.Node, where: str) -> list[tuple[str | None, int]]:
        module = _module(gm, node)
        if node.op == "placeholder":
            return [(None, _channels(node))]
        if isinstance(module, nn.ReLU):
            return [(node.name, _channels(node))]
        if isinstance(module, POOL_TYPES):
            return sources(node.args[0], where)
        if _is_cat(node):
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            if dim != 1:
                raise BenchSuiteError(f"cannot convert: {node.name} concatenates along dim {dim}, not channels")
            return [part for arg in node.args[0] for part in sources(arg, where)]
        raise BenchSuiteError(
            f"cannot convert: the input of layer '{where}' comes from '{node.name}' ({node.op} "
            f"{getattr(node.target, '__name__', node.target)}), but spiking conversion supports only "
            "ReLU, average pooling and channel concatenation between weighted layers"
        )

    layers, sites, pools, concats = [], [], [], []
    channels: dict[str, int] = {}
    output_node = next(n for n in gm.graph.nodes if n.op == "output")
    for node in gm.graph.nodes:
        module = _module(gm, node)
        if isinstance(module, nn.ReLU):
            producer = _module(gm, node.args[0])
            if not isinstance(producer, WEIGHTED_TYPES):
                raise BenchSuiteError(f"cannot convert: ReLU '{node.name}' does not follow a conv layer")
            sites.append(node.name)
            channels[node.name] = _channels(node)
        elif isinstance(module, POOL_TYPES):
            pools.append(node.name)
            channels[node.name] = _channels(node)
        elif _is_cat(node):
            concats.append(node.name)
        elif isinstance(module, WEIGHTED_TYPES):
            source = node.args[0]
            parts, start = [], 0
            for site, width in sources(source, node.target):
                parts.append(InputPart(site, start, start + width))
                start += width
            users = list(node.users)
            relu_users = [u for u in users if isinstance(_module(gm, u), nn.ReLU)]
            if relu_users and len(users) == 1:
                activation = relu_users[0].name
            elif users == [output_node]:
                activation = None
            else:
                raise BenchSuiteError(
                    f"cannot convert: layer '{node.target}' must be followed by exactly one ReLU "
                    "(or be the output head)"
                )
            concat = source.name if _is_cat(source) else None
            layers.append(WeightedLayer(node.target, node.name, tuple(parts), concat, activation))
        elif node.op == "call_module":
            raise BenchSuiteError(
                f"cannot convert: module '{node.target}' ({type(module).__name__}) has no spiking "
                "equivalent; use conv, ConvTranspose, ReLU, average pooling and concatenation"
            )
    if not layers or layers[-1].activation is not None:
        raise BenchSuiteError("cannot convert: the model must end in a weighted head layer without ReLU")
    if layers[0].parts[0].site is not None or layers[0].activation is None:
        raise BenchSuiteError("cannot convert: the model must start with a conv on the input followed by ReLU")
    return NetworkStructure(gm, layers, sites, pools, concats, channels)


def record_activations(
    gm: fx.GraphModule, x: torch.Tensor, names: set[str], reduce: Callable[[torch.Tensor], float]
) -> dict[str, float]:
    """Run ``gm`` on ``x`` and reduce the output of each named node as soon as it is computed."""
    found: dict[str, float] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, node: fx.Node):
            out = super().run_node(node)
            if node.name in names:
                found[node.name] = reduce(out.detach())
            return out

    with torch.no_grad():
        Recorder(gm).run(x)
    return found


def activation_scale(values: torch.Tensor, percentile: float) -> float:
    """λ = the given percentile of the activations; a dead layer (λ = 0) falls back to the max, then 1."""
    array = values.detach().float().cpu().numpy().ravel()
    scale = float(np.percentile(array, percentile)) if percentile < 100 else float(array.max())
    if scale <= 0:
        scale = float(array.max())
    if not np.isfinite(scale):
        raise BenchSuiteError("calibration found NaN or infinite activations; the ANN checkpoint is broken")
    return scale if scale > 0 else 1.0


def scale_input_channels(module: nn.Module, start: int, stop: int, factor: float) -> None:
    """Multiply the weights reading input channels ``start:stop`` by ``factor``."""
    dim = 0 if isinstance(module, TRANSPOSED_TYPES) else 1
    with torch.no_grad():
        module.weight.narrow(dim, start, stop - start).mul_(factor)


def scale_output(module: nn.Module, factor: float) -> None:
    with torch.no_grad():
        module.weight.mul_(factor)
        if module.bias is not None:
            module.bias.mul_(factor)


def respike_name(pool_target: str) -> str:
    """Module name of the neuron that re-spikes the output of the average pool at ``pool_target``."""
    return f"{pool_target.replace('.', '_')}_respike"


NeuronFactory = Callable[[float, int], SpikingNeuron]  # (threshold, channels) → neuron


def build_spiking_network(
    structure: NetworkStructure, normalized: fx.GraphModule, make_neuron: NeuronFactory,
    thresholds: dict[str, float] | None = None,
) -> SpikingNetwork:
    """Rewrite the normalized graph into a :class:`SpikingNetwork` (``normalized`` is left untouched)."""
    thresholds = thresholds or {}
    gm = copy.deepcopy(normalized)
    graph = gm.graph
    nodes = {n.name: n for n in graph.nodes}
    first, head = nodes[structure.first.node], nodes[structure.head.node]
    encoder = copy.deepcopy(gm.get_submodule(first.target))
    head_module = copy.deepcopy(gm.get_submodule(head.target))

    input_node = next(n for n in graph.nodes if n.op == "placeholder")
    with graph.inserting_before(input_node):
        current = graph.placeholder("current")
    first.replace_all_uses_with(current)
    graph.erase_node(first)
    graph.erase_node(input_node)

    output_node = next(n for n in graph.nodes if n.op == "output")
    output_node.args = (head.args[0],)
    graph.erase_node(head)

    for site in structure.sites:
        node = nodes[site]
        parent, _, attr = node.target.rpartition(".")
        setattr(gm.get_submodule(parent), attr, make_neuron(thresholds.get(site, 1.0), structure.channels[site]))
    for pool in structure.pools:
        node = nodes[pool]
        name = respike_name(node.target)
        gm.add_submodule(name, make_neuron(thresholds.get(pool, 1.0), structure.channels[pool]))
        with graph.inserting_after(node):
            respike = graph.call_module(name, (node,))
        node.replace_all_uses_with(respike, delete_user_cb=lambda user, keep=respike: user is not keep)
    graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return SpikingNetwork(encoder, gm, head_module)
