"""Synaptic operations, ANN MACs and energy against hand counts on tiny converted networks."""

from types import SimpleNamespace

import pytest
import torch
from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter
from torch import fx, nn

from bench_suite.core.neuron import SpikingNeuron
from bench_suite.experiment.evaluation import accumulate_layer_stats
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.norms.scaling import NoNorm
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.efficiency import (
    WEIGHTED,
    ann_macs,
    cell_efficiency,
    clear_event_maps,
    energy,
    event_maps,
    fan_out,
    fan_out_map,
    fan_out_maps,
    position_synops,
    reach_map,
    synaptic_operations,
)

ONES = torch.ones(1, 1, 4, 4)
# k3 padding 1 on 4×4: a corner input reaches 4 output positions, an edge input 6, an inner one 9
REACH_K3_P1_4x4 = (4 * 4 + 8 * 6 + 4 * 9) / 16  # = 100 / 16 = 6.25
# ConvTranspose k3 s2 p1 op1 on n inputs per side: input i reaches outputs 2i−1, 2i, 2i+1 of 0 … 2n−1,
# so the first input loses one (cropped by the padding): (3n − 1) per side
REACH_T_4x4 = (3 * 4 - 1) ** 2 / 16  # = 121 / 16
REACH_T_2x2 = (3 * 2 - 1) ** 2 / 4  # = 25 / 4


def convert(model: nn.Module, example: torch.Tensor, neuron=IFNeuron):
    structure = analyse(model, example)
    normalized = NoNorm().normalize(structure, example)
    return build_spiking_network(structure, normalized.graph, lambda th, ch: neuron(threshold=th, channels=ch))


def run_stats(snn, x: torch.Tensor, time_steps: int) -> list[dict]:
    with torch.no_grad():
        snn.simulate(x, time_steps, record="stats")
    totals: dict[str, dict] = {}
    accumulate_layer_stats(SimpleNamespace(spiking=snn, time_steps=time_steps), x.shape[0], totals)
    return list(totals.values())


def set_weights(conv: nn.Conv2d, out_channel: int | None = None, in_channel: int | None = None) -> None:
    """Weights 1 to ``out_channel`` / from ``in_channel`` (None: all), 0 elsewhere, no bias: which
    neurons fire is then known by hand."""
    with torch.no_grad():
        conv.weight.zero_()
        out = slice(None) if out_channel is None else out_channel
        inp = slice(None) if in_channel is None else in_channel
        conv.weight[out, inp] = 1.0
        conv.bias.zero_()


def conv_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 1))
    set_weights(net[0], out_channel=0)  # encoder: channel 0 gets the input, channel 1 nothing
    set_weights(net[2], in_channel=0)  # each output sums its spiking channel-0 neighbours
    return net


def by_layer(rows: list[dict]) -> dict[str, dict]:
    return {row["layer"]: row for row in rows}


# (a) ---------------------------------------------------------------------------------------------------
def test_conv_network_synops_match_a_hand_count_with_border_effects():
    snn = convert(conv_net(), ONES)
    fans = fan_out(snn, ONES)
    assert set(fans) == {"1", "3"}
    assert fans["1"].synapses == pytest.approx(3 * REACH_K3_P1_4x4)  # 18.75 = 3 channels × 6.25
    assert fans["1"].total == pytest.approx(18.75)
    assert fans["3"].synapses == 0 and fans["3"].readout_adds == 1  # feeds only the head (MACs once)

    rows, summary = cell_efficiency(snn, ONES, run_stats(snn, ONES, 3))
    rows = by_layer(rows)
    # "1": channel 0 gets current 1 each step, so its 16 IF neurons fire at each of the 3 steps
    assert rows["1"]["events"] == 48 and rows["1"]["spikes"] == 48
    # each step the 16 spikes reach Σ reach = 100 (position, tap) pairs in each of 3 output channels
    assert rows["1"]["synops"] == pytest.approx(3 * 3 * 100)
    # "3": every output sees ≥ 4 spiking neighbours, so all 3 × 16 fire every step; 1 readout add each
    assert rows["3"]["events"] == 144 and rows["3"]["synops"] == pytest.approx(144)
    assert summary["snn_synops_per_sample"] == pytest.approx(900 + 144)
    assert summary["ann_macs"] == 16 * 1 * 2 + 16 * 2 * 3 * 9 + 16 * 3 * 2  # encoder + conv + head
    assert summary["snn_energy_pj"] == pytest.approx((32 + 96) * 4.6 + 1044 * 0.9)
    assert summary["ann_energy_pj"] == pytest.approx(992 * 4.6)


def test_mt_graded_events_count_once_and_binary_synops_count_each_level():
    snn = convert(conv_net(), ONES, MTNeuron)
    rows, summary = cell_efficiency(snn, ONES, run_stats(snn, ONES, 3))
    first = by_layer(rows)["1"]
    # current 1 per step, levels {2, 1, 0.5, 0.25}: v = 1 → 0.75 (2 levels), then v = 1.25 → 1 (1 level)
    assert first["events"] == 16 * 3 and first["spikes"] == 16 * (2 + 1 + 1)
    assert first["synops"] == pytest.approx(48 * 18.75)
    assert first["synops_binary"] == pytest.approx(64 * 18.75)
    assert summary["snn_synops_binary_per_sample"] >= summary["snn_synops_per_sample"]


def test_synops_are_counted_per_position_as_executed():
    # issue 14: one corner spike per step reaches 4 positions × 3 channels = 12 synapses, not the layer's
    # average 18.75 (before: events × average fan-out, exact only for uniform firing)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1.0
    snn = convert(conv_net(), x)
    rows, _ = cell_efficiency(snn, x, run_stats(snn, x, 3))
    rows = by_layer(rows)
    assert rows["1"]["events"] == 3
    assert rows["1"]["synops"] == pytest.approx(3 * 12)
    assert rows["1"]["synops_uniform"] == pytest.approx(3 * 18.75)  # the average count, kept beside it
    assert rows["1"]["fan_out"] == pytest.approx(12) and rows["1"]["synops_counting"] == "per position"
    # the event map itself: 3 events on the corner, none elsewhere
    (shape, counts), = event_maps(snn)["1"].items()
    assert shape == (4, 4) and counts[0, 0] == 3 and counts.sum() == 3
    assert reach_map(snn.body.get_submodule("2"), (4, 4))[0, 0] == 4  # a corner input reaches 4 positions
    assert reach_map(snn.body.get_submodule("2"), (4, 4)).sum() == 100
    # statistics without event maps (made by hand) fall back to the average, and say so
    clear_event_maps(snn)
    fallback = by_layer(cell_efficiency(snn, x, run_stats_without_maps(snn, x, 3))[0])
    assert fallback["1"]["synops"] == pytest.approx(3 * 18.75)
    assert fallback["1"]["synops_counting"].startswith("position average")


def run_stats_without_maps(snn, x, time_steps):
    rows = run_stats(snn, x, time_steps)
    clear_event_maps(snn)
    return rows


# (b) ---------------------------------------------------------------------------------------------------
def transposed_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(), nn.Conv2d(3, 1, 1),
    )
    set_weights(net[0], out_channel=0)
    return net


def test_conv_transpose_consumer_fan_out_excludes_cropped_outputs():
    snn = convert(transposed_net(), ONES)
    fans = fan_out(snn, ONES)
    assert fans["1"].synapses == pytest.approx(3 * REACH_T_4x4)  # not 3 × 9: the padding crops a row
    rows = by_layer(synaptic_operations(run_stats(snn, ONES, 2), fans))
    assert rows["1"]["events"] == 2 * 16
    assert rows["1"]["synops"] == pytest.approx(2 * 3 * 121)
    assert ann_macs(snn, ONES)["2"] == 16 * 2 * 3 * 9  # input positions × C_in × C_out × k²


def test_fan_out_agrees_with_spikingjelly_synop_counter_on_uniform_binary_spikes():
    spikes = torch.zeros(1, 2, 4, 4)
    spikes[:, 0] = 1.0
    for name, net in (("conv", conv_net()), ("transposed", transposed_net())):
        snn = convert(net, ONES)
        counter = SynOpCounter()
        with torch.no_grad(), DispatchCounterMode([counter]):
            net[2](spikes)
        assert counter.get_total() == pytest.approx(16 * fan_out(snn, ONES)["1"].synapses), name


# (c) ---------------------------------------------------------------------------------------------------
class CatNet(nn.Module):
    """A 1-channel branch and a 3-channel (pooled, up-sampled) branch concatenated into a k3 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.act1 = nn.Conv2d(1, 2, 1), nn.ReLU()
        self.side, self.act_side = nn.Conv2d(2, 1, 1), nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.down, self.act_down = nn.Conv2d(2, 3, 1), nn.ReLU()
        self.up, self.act_up = nn.ConvTranspose2d(3, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU()
        self.merge, self.act_merge = nn.Conv2d(4, 2, 3, padding=1), nn.ReLU()
        self.head = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        x = self.act1(self.first(x))
        side = self.act_side(self.side(x))
        up = self.act_up(self.up(self.act_down(self.down(self.pool(x)))))
        return self.head(self.act_merge(self.merge(torch.cat([side, up], dim=1))))


def test_concatenation_parts_each_get_the_consumer_fan_out():
    torch.manual_seed(0)
    ann = CatNet()
    snn = convert(ann, ONES)
    fans = fan_out(snn, ONES)
    assert set(fans) == {"act1", "act_side", "pool_respike", "act_down", "act_up", "act_merge"}
    # act1 → side (k1, 1 output channel) and → the 2×2 pool: 4 adds per output = 1 per input element
    assert (fans["act1"].synapses, fans["act1"].pool_adds, fans["act1"].total) == (1, 1, 2)
    assert fans["pool_respike"].total == 3  # k1 conv with 3 output channels
    assert fans["act_down"].total == pytest.approx(3 * REACH_T_2x2)  # 18.75
    # both parts of the cat (1 and 3 channels) feed the k3 p1 conv with 2 output channels
    assert fans["act_side"].total == pytest.approx(2 * REACH_K3_P1_4x4)  # 12.5
    assert fans["act_up"].total == pytest.approx(12.5)
    assert fans["act_merge"].readout_adds == 1

    # hand-made counters, 2 samples
    neurons = dict(snn.neurons())
    for neuron in neurons.values():
        neuron.events, neuron.spikes = torch.tensor(0.0), torch.tensor(0.0)
    neurons["act_side"].events, neurons["act_side"].spikes = torch.tensor(5.0), torch.tensor(7.0)
    neurons["act_up"].events, neurons["act_up"].spikes = torch.tensor(11.0), torch.tensor(20.0)
    totals: dict[str, dict] = {}
    accumulate_layer_stats(SimpleNamespace(spiking=snn, time_steps=4), 2, totals)
    rows = by_layer(synaptic_operations(list(totals.values()), fans))
    assert rows["act_side"]["synops"] == pytest.approx(5 * 12.5)
    assert rows["act_up"]["synops"] == pytest.approx(11 * 12.5)
    assert rows["act_up"]["synops_binary"] == pytest.approx(20 * 12.5)
    assert rows["act_up"]["synops_per_sample"] == pytest.approx(11 * 12.5 / 2)
    assert rows["act1"]["synops"] == 0

    snn_macs, macs = ann_macs(snn, ONES), ann_macs(ann, ONES)
    assert macs == {"first": 32, "side": 32, "down": 24, "up": 4 * 3 * 3 * 9, "merge": 16 * 4 * 2 * 9, "head": 64}
    assert snn_macs == {"encoder": 32, **{k: v for k, v in macs.items() if k not in ("first", "head")}, "head": 64}


# (d) ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("neuron", [IFNeuron, MTNeuron])
def test_all_zero_input_gives_zero_events_and_synops(neuron):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 1))
    for module in net:
        if isinstance(module, nn.Conv2d):
            nn.init.zeros_(module.bias)
    x = torch.zeros(1, 1, 4, 4)
    snn = convert(net, torch.randn(4, 1, 4, 4), neuron)
    rows, summary = cell_efficiency(snn, x, run_stats(snn, x, 4))
    assert all(row["events"] == 0 and row["synops"] == 0 and row["synops_binary"] == 0 for row in rows)
    assert summary["snn_synops_per_sample"] == 0
    assert summary["snn_energy_pj"] == pytest.approx((32 + 96) * 4.6)  # encoder and head MACs only


# (e) ---------------------------------------------------------------------------------------------------
def test_energy_arithmetic():
    result = energy(1000, 500, 100, 50)
    assert result["ann_energy_pj"] == pytest.approx(4600.0)
    assert result["snn_energy_pj"] == pytest.approx(150 * 4.6 + 500 * 0.9)  # 690 + 450
    assert result["energy_ratio"] == pytest.approx(1140 / 4600)
    assert energy(10, 10, 0, 0, mac_pj=1.0, ac_pj=0.5)["snn_energy_pj"] == pytest.approx(5.0)


# (f) ---------------------------------------------------------------------------------------------------
def test_ann_macs_of_a_known_conv_and_spikingjelly_agreement():
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(5, 4, 2, stride=2))
    x = torch.randn(1, 3, 8, 8)
    macs = ann_macs(model, x)
    assert macs["0"] == 8 * 8 * 3 * 5 * 3**2  # H·W·C_in·C_out·k²
    assert macs["2"] == 8 * 8 * 5 * 4 * 2**2

    counter = MACCounter()
    with torch.no_grad(), DispatchCounterMode([counter]):
        model(x)
    assert counter.get_total() == macs["0"] + macs["2"]  # real-valued inputs: the same counts

    # what the docstring of ann_macs says about spikingjelly: a {0, 1} input counts as spikes (0 MACs),
    # and a graded MT-like input counts as dense MACs with 0 synaptic operations
    conv = model[0]
    binary, graded = MACCounter(), SynOpCounter()
    with torch.no_grad():
        with DispatchCounterMode([binary]):
            conv(torch.ones(1, 3, 8, 8))
        with DispatchCounterMode([graded]):
            conv(torch.full((1, 3, 8, 8), 0.75))
    assert binary.get_total() == 0 and graded.get_total() == 0


def test_input_coding_counts_the_encoder_at_every_step():
    snn = convert(conv_net(), ONES)
    stats = run_stats(snn, ONES, 3)
    _, direct = cell_efficiency(snn, ONES, stats)
    snn.input_coding = object()  # any coder: the first conv then runs on each step's coded input
    _, coded = cell_efficiency(snn, ONES, stats)
    assert coded["snn_energy_pj"] - direct["snn_energy_pj"] == pytest.approx(2 * 32 * 4.6)


def test_small_unet_is_accounted_end_to_end():
    from bench_suite.models.unet import UNet

    torch.manual_seed(0)
    ann = UNet(1, 2, width=2, depth=2)
    x = torch.rand(1, 1, 8, 8)
    snn = convert(ann, x)
    fans = fan_out(snn, x)
    assert set(fans) == {name for name, _ in snn.neurons()}
    assert all(fan.total > 0 for fan in fans.values())
    assert fans["pools_0_respike"].pool_adds == 0 and fans["down.0.3"].pool_adds == 1  # skip + pool
    assert sum(ann_macs(snn, x).values()) == sum(ann_macs(ann, x).values())
    rows, summary = cell_efficiency(snn, x, run_stats(snn, x, 2))
    assert len(rows) == len(fans) and summary["snn_energy_pj"] > 0


# (g) issue 14: the per-position count against SpikingJelly's SynOpCounter and a hand count ------------------


class _Attribute(fx.Interpreter):
    """Re-runs the body on recorded neuron outputs of step ``t``, keeping only layer ``target``'s spikes,
    and counts every weighted layer's input under SpikingJelly's SynOpCounter."""

    def __init__(self, gm, outputs, target, t, counter):
        super().__init__(gm)
        self.outputs, self.target, self.t, self.counter = outputs, target, t, counter

    def call_module(self, target, args, kwargs):
        module = self.module.get_submodule(target)
        if isinstance(module, SpikingNeuron):
            out = self.outputs[target][self.t]
            return out if target == self.target else torch.zeros_like(out)
        if isinstance(module, WEIGHTED) and bool(args[0].any()):
            with DispatchCounterMode([self.counter]):
                module(args[0])
        return module(args[0])


def spikingjelly_synops(snn, x, time_steps):
    """Per layer: SpikingJelly's SynOpCounter on the spikes that layer sent in a recorded simulation."""
    outputs: dict[str, list[torch.Tensor]] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, n=name: outputs.setdefault(n, []).append(o.clone()))
             for name, module in snn.neurons()]
    with torch.no_grad():
        snn.simulate(x, time_steps, record="stats")
    for hook in hooks:
        hook.remove()
    assert all(bool(((o == 0) | (o == 1)).all()) for outs in outputs.values() for o in outs)  # binary spikes
    with torch.no_grad():
        current = snn.encoder(x)
    counts = {}
    for name, _ in snn.neurons():
        counter = SynOpCounter()
        for t in range(time_steps):
            with torch.no_grad():
                _Attribute(snn.body, outputs, name, t, counter).run(current)
        counts[name] = counter.get_total()
    return counts


def test_per_position_synops_equal_spikingjelly_synop_counter_on_binary_spikes():
    from bench_suite.models.unet import UNet

    torch.manual_seed(0)
    ann = UNet(1, 2, width=4, depth=2)
    with torch.no_grad():
        for parameter in ann.parameters():
            parameter.mul_(2.5)  # enough current that every level fires, unevenly
    x = torch.zeros(1, 1, 24, 24)
    x[..., :9, :13] = torch.rand(1, 1, 9, 13) * 3  # firing sits in one corner: border positions matter
    snn = convert(ann, x)
    reference = spikingjelly_synops(snn, x, 6)  # also leaves the event maps of this simulation
    maps = event_maps(snn)
    fans = fan_out(snn, x)
    before, after = {}, {}
    for name, by_shape in maps.items():
        ((shape, counts),) = by_shape.items()
        synapse_map = fan_out_maps(snn, {name: shape})[name]["synapses"]  # SynOpCounter counts synapses only
        after[name] = float((counts.double() * synapse_map).sum())
        before[name] = float(counts.sum()) * fans[name].synapses
    active = [name for name in reference if reference[name] > 0]
    assert len(active) >= 12
    for name in reference:
        assert after[name] == pytest.approx(reference[name]), name  # exact per layer
    # the layer-average count is several per cent off on the smaller, sparser layers (measured: −3.7 % to
    # +2.7 % per layer, −1.0 % in total on this network)
    errors = [before[name] / reference[name] - 1 for name in active]
    assert max(abs(e) for e in errors) > 0.02
    assert sum(after.values()) == pytest.approx(sum(reference.values()))


def test_graded_mt_events_are_counted_per_position_by_hand():
    # MT (levels 2, 1, 0.5, 0.25) on currents 1, 0.75, 0, 1 along the top row of 4×4: graded outputs
    # 0.75, 0.5, 0, 0.75 at step 1 (2 + 1 + 2 levels) and 1, 0.75, 0, 1 at step 2 (1 + 2 + 1 levels)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, :] = torch.tensor([1.0, 0.75, 0.0, 1.0])
    snn = convert(conv_net(), x, MTNeuron)
    rows, _ = cell_efficiency(snn, x, run_stats(snn, x, 2))
    first = by_layer(rows)["1"]
    # events of "1" per position: corners (0,0) and (0,3) and edge (0,1) fire at both steps; reach into the
    # k3 p1 conv: corner 4, edge 6 positions, each × 3 output channels
    (shape, counts), = event_maps(snn)["1"].items()
    assert counts[0].tolist() == [2, 2, 0, 2] and counts[1:].sum() == 0
    assert first["events"] == 6 and first["spikes"] == 9
    assert first["synops"] == pytest.approx(2 * (4 + 6 + 4) * 3)  # 84, one AC per graded event
    assert first["synops_binary"] == pytest.approx(first["spikes"] * 84 / 6)
    assert fan_out_map(snn, "1", (4, 4))[0].tolist() == [12, 18, 18, 12]


def test_event_maps_add_up_over_batches_and_shapes():
    snn = convert(conv_net(), ONES)
    small, large = torch.ones(1, 1, 4, 4), torch.ones(2, 1, 6, 6)
    with torch.no_grad():
        snn.simulate(small, 2, record="stats")
        snn.simulate(large, 2, record="stats")
    maps = event_maps(snn)["1"]
    assert set(maps) == {(4, 4), (6, 6)}
    assert maps[(4, 4)].sum() == 2 * 16 and maps[(6, 6)].sum() == 2 * 2 * 36
    events, ops = position_synops(snn)["1"]
    # every position fires each step: Σ reach per shape × 3 channels × steps × samples
    assert events == 32 + 144
    assert ops == pytest.approx(3 * (2 * 100 + 2 * 2 * reach_map(snn.body.get_submodule("2"), (6, 6)).sum().item()))
