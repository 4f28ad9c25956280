import math

import pytest
import torch

from bench_suite.core.surrogates import DEFAULT_ALPHA, make_surrogate, surrogate_derivative
from bench_suite.neurons.integrate_fire import IFNeuron, IFParams
from bench_suite.neurons.multi_threshold import MTNeuron, MTParams

Z = torch.linspace(-2, 2, 41, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(DEFAULT_ALPHA))
def test_forward_is_heaviside_and_backward_is_the_stated_derivative(name):
    z = Z.clone().requires_grad_(True)
    fn = make_surrogate(name, 0.0)
    out = fn(z)
    assert torch.equal(out.detach(), (Z >= 0).to(out.dtype))
    out.sum().backward()
    assert torch.allclose(z.grad, surrogate_derivative(name, 0.0, Z), atol=1e-6)


def test_closed_forms_by_hand():
    zero = torch.tensor([0.0])
    assert surrogate_derivative("sigmoid", 4.0, zero).item() == pytest.approx(1.0)  # 4·½·½
    assert surrogate_derivative("atan", 2.0, zero).item() == pytest.approx(1.0)  # 2/(2·1)
    assert surrogate_derivative("atan", 2.0, torch.tensor([1.0])).item() == pytest.approx(1 / (1 + math.pi**2))
    assert surrogate_derivative("rectangular", 1.0, torch.tensor([0.49, 0.51])).tolist() == [1.0, 0.0]
    assert surrogate_derivative("triangle", 0.3, torch.tensor([0.0, 0.5, 1.5])).tolist() == pytest.approx(
        [0.3, 0.15, 0.0])


def test_triangle_in_membrane_units_matches_yue_formula():
    # ∂o/∂u = α·max(0, 1 − |u/θ − 1|)/θ with α = 0.3, θ = 2
    neuron = IFNeuron(IFParams(surrogate="triangle"), threshold=2.0)
    u = torch.tensor([1.0, 2.0, 3.0, 5.0], requires_grad=True)
    neuron.fire(u).sum().backward()
    expected = [0.3 * max(0.0, 1 - abs(v / 2 - 1)) / 2 * 2 for v in (1.0, 2.0, 3.0, 5.0)]  # × θ output
    assert u.grad.tolist() == pytest.approx(expected)


def test_every_neuron_has_a_non_zero_surrogate_gradient():
    for neuron in (IFNeuron(), MTNeuron(MTParams(surrogate="atan"))):
        v = torch.linspace(0.1, 3.0, 30, requires_grad=True)
        neuron.fire(v).sum().backward()
        assert v.grad.abs().sum() > 0
