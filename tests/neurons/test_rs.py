import pytest
import torch

from bench_suite.models.unet import UNet
from bench_suite.neurons.real_spike import RSNeuron
from bench_suite.norms.scaling import ConnectionWiseNorm
from bench_suite.snn.convert import analyse, build_spiking_network


def test_real_spike_dynamics_scale_output_not_reset():
    neuron = RSNeuron(channels=2)
    with torch.no_grad():
        neuron.scale.copy_(torch.tensor([0.5, 2.0]))
    x = torch.tensor([[[0.7]], [[1.2]]]).view(1, 2, 1, 1)
    out = neuron(x)
    assert out.flatten().tolist() == pytest.approx([0.0, 2.0])
    assert neuron.v.flatten().tolist() == pytest.approx([0.7, 0.2])  # reset subtracts θ, not the output


def test_folded_network_equals_unfolded_on_binary_spikes():
    torch.manual_seed(0)
    ann = UNet(1, 2, width=4).double()
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    structure = analyse(ann, x)
    normalized = ConnectionWiseNorm().normalize(structure, x)
    snn = build_spiking_network(structure, normalized.graph, lambda th, ch: RSNeuron(threshold=th, channels=ch))
    snn = snn.double()
    for _, neuron in snn.neurons():
        with torch.no_grad():
            neuron.scale.copy_(torch.rand(neuron.channels, dtype=torch.float64) * 1.5 + 0.25)
    with torch.no_grad():
        before = snn(x, 12)
        snn.finalize()
        spikes = []
        hooks = [n.register_forward_hook(lambda m, i, o: spikes.append(o)) for _, n in snn.neurons()]
        after = snn(x, 12)
    for hook in hooks:
        hook.remove()
    assert all(n.folded for _, n in snn.neurons())
    assert torch.allclose(before, after, atol=1e-12, rtol=1e-9)
    assert all(set(torch.unique(s).tolist()) <= {0.0, 1.0} for s in spikes), "inference must be binary"
    assert before.abs().mean() > 0.01


def test_asf_fine_tunes_the_scales():
    torch.manual_seed(1)
    ann = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 1))
    x = torch.rand(2, 1, 4, 4) * 3
    structure = analyse(ann, x)
    normalized = ConnectionWiseNorm().normalize(structure, x)
    snn = build_spiking_network(structure, normalized.graph, lambda th, ch: RSNeuron(threshold=th, channels=ch))
    with torch.no_grad():
        simulated = snn.simulate(x, 8, record=True)
    out = snn.flow_forward(x)
    assert torch.allclose(out, simulated, atol=1e-6)
    out.sum().backward()
    (_, neuron), = snn.neurons()
    assert neuron.scale.grad is not None and neuron.scale.grad.abs().sum() > 0
