import torch
from torch import nn

from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.norms.scaling import NoNorm
from bench_suite.snn.convert import analyse, build_spiking_network


def tiny_network(neuron_cls):
    torch.manual_seed(3)
    ann = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU(), nn.Conv2d(3, 2, 1))
    x = torch.randn(2, 1, 3, 3)
    structure = analyse(ann, x)
    normalized = NoNorm().normalize(structure, x)
    return build_spiking_network(structure, normalized.graph, lambda th, ch: neuron_cls(threshold=th, channels=ch)), x


def test_asf_gradient_is_gated_straight_through_identity():
    for neuron_cls in (IFNeuron, MTNeuron):
        snn, x = tiny_network(neuron_cls)
        T = 7
        with torch.no_grad():
            simulated = snn.simulate(x, T, record=True)
        (_, neuron), = snn.neurons()
        rate = (neuron.acc_out / T).clone()
        with torch.no_grad():
            gate = (T * snn.encoder(x) > 0).float()  # the input current is constant over the T steps
        out = snn.flow_forward(x)
        assert torch.allclose(out, simulated, atol=1e-6)  # the ASF forward is the simulated output
        weight_out = torch.randn_like(out)
        (out * weight_out).sum().backward()

        head_w = snn.head.weight.detach().view(2, 3)
        # by hand: d/d head.weight = Σ_pixels g_out ⊗ rate; d/d encoder.weight = Σ (Wᵀ g_out)·gate·x
        expected_head = torch.einsum("bohw,bihw->oi", weight_out, rate)
        back = torch.einsum("oi,bohw->bihw", head_w, weight_out) * gate
        expected_encoder = torch.einsum("bihw,bchw->ic", back, x)
        assert torch.allclose(snn.head.weight.grad.view(2, 3), expected_head, atol=1e-5)
        assert torch.allclose(snn.encoder.weight.grad.view(3, 1), expected_encoder, atol=1e-5)
        assert torch.allclose(snn.encoder.bias.grad, back.sum((0, 2, 3)), atol=1e-5)


def test_asf_records_no_per_step_state():
    snn, x = tiny_network(IFNeuron)
    with torch.no_grad():
        snn.simulate(x, 50, record=True)
    (_, neuron), = snn.neurons()
    assert neuron.acc_out.shape == (2, 3, 3, 3) and neuron.acc_out.grad_fn is None
    assert neuron.steps == 50
