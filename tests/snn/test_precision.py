"""bf16 simulation: body convolutions in bf16, spikes handed on exactly, membranes and the sum over T in fp32."""

import pytest
import torch

from bench_suite.models.unet import UNet
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.norms.scaling import ConnectionWiseNorm
from bench_suite.snn.convert import analyse, build_spiking_network


def converted(neuron_cls):
    torch.manual_seed(0)
    ann = UNet(1, 2, width=8, depth=2).eval()
    ann = ann.to(memory_format=ann.memory_format)
    x = torch.rand(2, 1, 32, 32)
    structure = analyse(ann, x)
    graph = ConnectionWiseNorm().normalize(structure, x).graph
    return build_spiking_network(structure, graph, lambda th, ch: neuron_cls(threshold=th, channels=ch)).eval(), x


@pytest.mark.parametrize("neuron_cls", [IFNeuron, MTNeuron])
def test_bf16_copy_is_close_and_keeps_membranes_fp32(neuron_cls):
    snn, x = converted(neuron_cls)
    with torch.inference_mode():
        exact = snn(x, 8)
        low = snn.with_precision(torch.bfloat16)
        fast = low(x, 8)
    assert fast.dtype == torch.float32
    relative = float((fast - exact).norm() / exact.norm())
    assert 0 < relative < 0.05  # weights are rounded, so not identical, but close
    for (_, exact_neuron), (_, neuron) in zip(snn.neurons(), low.neurons(), strict=True):
        assert neuron.v.dtype == torch.float32 and exact_neuron.output_dtype is None
    convs = [m for m in snn.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.dtype == torch.float32 for m in convs)  # the original is untouched


def test_bf16_neuron_hands_on_exact_levels():
    neuron = MTNeuron(threshold=1.0, channels=1)
    neuron.output_dtype = torch.bfloat16
    x = torch.tensor([[0.3, 1.1, 2.6, 5.0]], dtype=torch.bfloat16)
    with torch.no_grad():
        out = neuron(x)
    assert out.dtype == torch.bfloat16 and neuron.v.dtype == torch.float32
    reference = MTNeuron(threshold=1.0, channels=1)
    with torch.no_grad():
        assert torch.equal(out.float(), reference(x.float()))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_simulation_keeps_the_anns_layout(layout):
    torch.manual_seed(0)
    ann = UNet(1, 2, width=8, depth=2).eval().to(memory_format=layout)
    x = torch.rand(2, 1, 32, 32)
    structure = analyse(ann, x)
    snn = build_spiking_network(structure, ConnectionWiseNorm().normalize(structure, x).graph,
                                lambda th, ch: IFNeuron(threshold=th, channels=ch))
    assert snn.memory_format(x) == layout


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gradient_clip_acts_on_the_true_gradients_under_loss_scaling(precision):
    """fp16 scales the loss by 2^16: a clip before unscaling would cut the true gradient 2^16 times too far."""
    from bench_suite.snn.training import MixedPrecision

    weight = torch.nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    amp = MixedPrecision("cpu", precision)
    loss = (weight * torch.tensor([3.0, 0.0, 4.0, 0.0])).sum()  # gradient (3, 0, 4, 0), norm 5
    amp.step(loss, optimizer, clip_norm=1.0)
    assert torch.allclose(weight.detach(), torch.tensor([-0.6, 0.0, -0.8, 0.0]), atol=1e-4)
    unclipped = torch.nn.Parameter(torch.zeros(4))
    amp.step((unclipped * torch.tensor([3.0, 0.0, 4.0, 0.0])).sum(), torch.optim.SGD([unclipped], lr=1.0))
    assert torch.allclose(unclipped.detach(), torch.tensor([-3.0, 0.0, -4.0, 0.0]), atol=1e-3)
