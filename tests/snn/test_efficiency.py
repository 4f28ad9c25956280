"""Synaptic operations, ANN MACs and energy against hand counts on tiny converted networks."""

from types import SimpleNamespace

import pytest
import torch
from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter
from torch import nn

from bench_suite.experiment.evaluation import accumulate_layer_stats
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.norms.scaling import NoNorm
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.efficiency import ann_macs, cell_efficiency, energy, fan_out, synaptic_operations

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


def test_synops_use_the_position_average_of_the_fan_out():
    # one corner spike per step really reaches 4 positions × 3 channels = 12 synapses; the neurons count
    # events per layer, not per position, so the count uses the layer's average 18.75 (module docstring)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1.0
    snn = convert(conv_net(), x)
    rows = by_layer(synaptic_operations(run_stats(snn, x, 3), fan_out(snn, x)))
    assert rows["1"]["events"] == 3
    assert rows["1"]["synops"] == pytest.approx(3 * 18.75)


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
