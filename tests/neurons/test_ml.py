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


def test_conversion_gives_ml_the_unit_over_k_and_the_network_fires():
    """θ/K after normalization: K units together output the normalization's unit per step (issue 15)."""
    import torch

    from bench_suite.core.contracts import TrainerContext
    from bench_suite.core.profiles import PROFILES
    from bench_suite.models.unet import UNet2d, UNet2dParams
    from bench_suite.neurons.multi_level import MLNeuron, MLParams
    from bench_suite.norms.scaling import ConnectionWiseNorm
    from bench_suite.snn.training import convert
    from bench_suite.testing.checks import tiny_bundle

    bundle = tiny_bundle()
    torch.manual_seed(0)
    ann = UNet2d(UNet2dParams(depth=2)).build(bundle.task, 4).eval()
    ctx = TrainerContext(bundle=bundle, profile=PROFILES["smoke"], model_plugin=UNet2d(), get_ann=lambda loss=None: ann,
                         make_neuron=lambda th, ch: MLNeuron(MLParams(units=3), threshold=th, channels=ch),
                         norm=ConnectionWiseNorm(), seed=0, time_steps=8)
    x = torch.from_numpy(bundle.train[0].image[None].copy())
    network = convert(ctx, x)
    for _, neuron in network.neurons():
        assert neuron.v_threshold == pytest.approx(1 / 3)  # every normalized unit θ = 1, over K = 3
        assert neuron.unit_thresholds.tolist() == pytest.approx([0.6 / 3, 1.6 / 3, 2.6 / 3])
    network.set_record("stats")
    with torch.no_grad():
        network.simulate(x, 8, record="stats")
    assert sum(float(neuron.spikes) for _, neuron in network.neurons()) > 0
