import pytest
import torch
from torch import nn

from bench_suite.core.errors import BenchSuiteError
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.norms.threshold_balance import TBParams, ThresholdBalancing
from bench_suite.snn.convert import analyse, build_spiking_network


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


def test_time_folded_pass_takes_fewer_samples_when_they_would_not_fit():
    from bench_suite.snn.calibration import FOLDED_ELEMENTS, samples_within_budget

    assert samples_within_budget(4, 200, 48 * 48) == 4  # 2-D patches: all four fit
    assert samples_within_budget(4, 200, 40 * 56 * 40) == 1  # a 3-D volume at 200 steps: one
    assert samples_within_budget(4, 5000, FOLDED_ELEMENTS) == 1  # never fewer than one
    assert samples_within_budget(4, 2, FOLDED_ELEMENTS // 4) == 2


def test_percentile_thresholds_by_hand():
    # five pixel currents 0.1 … 0.5, constant over steps: the 50th percentile of layer 1's input is 0.3;
    # layer 1 (θ1 = 0.3) then fires 0.3 on the pixels ≥ 0.3 at various rates; the 100th percentile is the max
    x = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]).view(1, 1, 1, 5)
    structure = analyse(tiny(), x)
    median = ThresholdBalancing(TBParams(steps=10, scale=1.0, percentile=50)).normalize(
        structure, x, make_neuron=make_if)
    maximum = ThresholdBalancing(TBParams(steps=10, scale=1.0)).normalize(structure, x, make_neuron=make_if)
    assert median.thresholds["_1"] == pytest.approx(0.3) and maximum.thresholds["_1"] == pytest.approx(0.5)
    # layer 2 sees 2·0.3·spike from the median-balanced layer 1: its largest input is 0.6
    assert median.thresholds["_3"] <= 0.6 + 1e-6


def test_percentile_of_a_large_input_uses_an_even_subsample():
    from bench_suite.snn.calibration import PERCENTILE_ELEMENTS, input_level

    values = torch.arange(3 * PERCENTILE_ELEMENTS, dtype=torch.float32) / (3 * PERCENTILE_ELEMENTS)
    assert input_level(values, 100.0) == float(values.max())
    assert input_level(values, 99.0) == pytest.approx(0.99, abs=1e-3)


@pytest.mark.parametrize("percentile", [49, 101])
def test_percentile_out_of_range_is_refused(percentile):
    with pytest.raises(ValueError, match="percentile must be between 50 and 100"):
        TBParams(percentile=percentile)
