import pytest
import torch
from torch import nn

from bench_suite.convert import analyse, build_spiking_network
from bench_suite.errors import BenchSuiteError
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.norms.threshold_balance import TBParams, ThresholdBalancing


def tiny():
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU(), nn.Conv2d(1, 1, 1), nn.ReLU(), nn.Conv2d(1, 1, 1))
    with torch.no_grad():
        for conv, weight in zip((net[0], net[2], net[4]), (1.0, 2.0, 1.0), strict=True):
            conv.weight.fill_(weight)
            conv.bias.zero_()
    return net


def make_if(threshold, channels):
    return IFNeuron(threshold=threshold, channels=channels)


def test_thresholds_by_hand():
    # pixel currents 0.5 and 0.2 every step → θ1 = 0.5; the first layer then emits 0.5 (= θ1) on its
    # spikes, the second conv doubles it → θ2 = max input = 1.0; × scale 0.7
    x = torch.tensor([0.5, 0.2]).view(1, 1, 1, 2)
    structure = analyse(tiny(), x)
    result = ThresholdBalancing(TBParams(steps=20, scale=0.7)).normalize(structure, x, make_neuron=make_if)
    assert result.thresholds == pytest.approx({"_1": 0.35, "_3": 0.7})  # fx names of the ReLU nodes
    assert result.scales == pytest.approx({"1": 0.5, "3": 1.0})
    snn = build_spiking_network(structure, result.graph, make_if, result.thresholds)
    thresholds = [n.v_threshold for _, n in snn.neurons()]
    assert thresholds == pytest.approx([0.35, 0.7])


def test_balanced_network_approaches_ann_with_scale_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(4, 2, 1))
    x = torch.rand(2, 1, 8, 8)
    structure = analyse(net, x)
    result = ThresholdBalancing(TBParams(steps=100, scale=1.0)).normalize(structure, x, make_neuron=make_if)
    snn = build_spiking_network(structure, result.graph, make_if, result.thresholds)
    with torch.no_grad():
        error = (snn(x, 400) - net(x)).abs().mean() / net(x).abs().mean()
    assert error < 0.05


def test_needs_a_neuron():
    x = torch.rand(1, 1, 2, 2)
    with pytest.raises(BenchSuiteError, match="needs the cell's neuron"):
        ThresholdBalancing().normalize(analyse(tiny(), x), x)
