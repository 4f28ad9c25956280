import pytest
import torch

from bench_suite.neurons.multi_level import MLNeuron, MLParams


def test_multi_level_hand_computed_sequence():
    # units: thresholds 0.6, 1.6, 2.6; u_k ← 0.25·u_k + x, fire at u_k ≥ θ_k, hard reset per unit
    neuron = MLNeuron()
    neuron.record = "stats"
    outputs = [neuron(torch.tensor([x])).item() for x in (1.0, 0.5, 2.0, 0.0)]
    # step 1: u = 1.0 for all → unit 1 fires (1 ≥ 0.6); u = [0, 1, 1]
    # step 2: u = [0.5, 0.75, 0.75] → nothing fires
    # step 3: u = [2.125, 2.1875, 2.1875] → units 1 and 2 fire; u = [0, 0, 2.1875]
    # step 4: u = [0, 0, 0.546875] → nothing
    assert outputs == [1.0, 0.0, 2.0, 0.0]
    assert neuron.v.squeeze().tolist() == pytest.approx([0.0, 0.0, 0.546875])
    assert float(neuron.spikes) == 3 and float(neuron.events) == 2


def test_multi_level_output_bounded_by_units_and_scaled_by_threshold():
    neuron = MLNeuron(MLParams(units=2), threshold=0.5)
    out = neuron(torch.tensor([100.0]))
    assert out.item() == 1.0  # both units fire: 2 × θ


def test_multi_level_gradient_uses_rectangular_surrogate_of_width_a():
    neuron = MLNeuron(MLParams(units=1, theta0=1.0))
    v = torch.tensor([0.8, 1.2, 2.0], requires_grad=True)
    neuron.fire(v).sum().backward()
    assert v.grad.tolist() == pytest.approx([1.0, 1.0, 0.0])  # |v − 1| < a/2 = 0.5 → 1/a
