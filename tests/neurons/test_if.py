import pytest
import torch

from bench_suite.neurons.integrate_fire import IFNeuron, IFParams


def test_if_matches_spikingjelly_if_node_spike_for_spike():
    from spikingjelly.activation_based import neuron as sj_neuron

    torch.manual_seed(1)
    inputs = torch.rand(60, 4, 8) * 0.9 - 0.1
    ours, theirs = IFNeuron(threshold=1.0), sj_neuron.IFNode(v_threshold=1.0, v_reset=None)
    for x in inputs:
        assert torch.equal(ours(x), theirs(x)), "IF spikes differ from SpikingJelly's IFNode"
    assert torch.allclose(ours.v, theirs.v)


def test_if_matches_snntorch_leaky_beta_one_subtract_spike_for_spike():
    snntorch = pytest.importorskip("snntorch")

    torch.manual_seed(2)
    inputs = torch.rand(60, 4, 8) * 0.9 - 0.1
    ours = IFNeuron(threshold=1.0)
    leaky = snntorch.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")
    mem = leaky.init_leaky()
    total = 0
    for x in inputs:
        spikes, mem = leaky(x, mem)
        ours_out = ours(x)
        assert torch.equal(ours_out, spikes), "IF spikes differ from snnTorch's Leaky(beta=1, subtract)"
        total += int(spikes.sum())
    assert total > 100  # the comparison exercised real spiking


def test_if_output_is_threshold_times_spike_and_reset_to_zero_option():
    neuron = IFNeuron(threshold=0.5)
    assert neuron(torch.tensor([0.7])).item() == 0.5
    assert neuron.v.item() == pytest.approx(0.2)
    zero = IFNeuron(IFParams(reset="zero"), threshold=0.5)
    assert zero(torch.tensor([0.7])).item() == 0.5
    assert zero.v.item() == 0.0


def test_statistics_count_one_spike_per_event_per_position():
    torch.manual_seed(0)
    neuron = IFNeuron()
    neuron.record = "stats"
    expected = torch.zeros(4, 4, dtype=torch.int64)
    with torch.inference_mode():
        for _ in range(4):
            out = neuron(torch.rand(3, 6, 4, 4).contiguous(memory_format=torch.channels_last))
            expected += (out != 0).sum(dim=(0, 1))
    assert torch.equal(neuron.event_maps[(4, 4)], expected) and int(expected.sum()) > 0
    assert int(neuron.events) == int(neuron.spikes) == int(expected.sum())
