import pytest
import torch

from bench_suite.neurons.multi_threshold import MTNeuron, MTParams, optimal_thresholds


def run_steps(neuron, inputs):
    outputs = []
    for value in inputs:
        outputs.append(neuron(torch.tensor([value])).item())
    return outputs


def test_reference_levels_on_hand_computed_membrane_sequence():
    neuron = MTNeuron()
    neuron.record = "stats"
    # v: 0.6 → fires 0.5 (rest 0.1); 3.1 → 2 + 1 (rest 0.1); −0.4 → nothing, kept negative;
    # 0.3 → 0.25; 5.05 → all four levels, 3.75 (rest 1.3); 1.3 → 1 + 0.25 (rest 0.05)
    outputs = run_steps(neuron, [0.6, 3.0, -0.5, 0.7, 5.0, 0.0])
    assert outputs == pytest.approx([0.5, 3.0, 0.0, 0.25, 3.75, 1.25])
    assert neuron.v.item() == pytest.approx(0.05, abs=1e-6)
    assert float(neuron.events) == 5
    assert float(neuron.spikes) == 1 + 2 + 1 + 4 + 2


def test_negative_membrane_is_kept_not_floored():
    neuron = MTNeuron()
    run_steps(neuron, [-1.0, -0.5])
    assert neuron.v.item() == pytest.approx(-1.5)
    assert run_steps(neuron, [2.0]) == [0.25]  # v = 0.5 is not > 0.5, but is > 0.25


def test_levels_scale_with_threshold():
    neuron = MTNeuron(threshold=0.5)
    assert run_steps(neuron, [1.2]) == pytest.approx([1.0 + 0.125])  # levels 1, 0.5, 0.25, 0.125


def test_strict_inequality_at_exact_level():
    assert run_steps(MTNeuron(), [2.0]) == pytest.approx([1.75])  # not > 2: fires 1, 0.5, 0.25


def test_quantization_fast_path_equals_greedy_loop():
    torch.manual_seed(0)
    v = torch.randn(100_000) * 3
    fast = MTNeuron()
    slow = MTNeuron()
    slow.halving = False
    assert fast.halving
    assert torch.equal(fast.fire(v), slow.fire(v))
    assert torch.equal(fast.level_spikes(fast.fire(v)), slow.level_spikes(slow.fire(v)))


def test_non_halving_threshold_set_uses_loop():
    neuron = MTNeuron(MTParams(thresholds=(3.0, 1.0)))
    assert not neuron.halving
    assert run_steps(neuron, [3.5, 0.0, 0.6]) == pytest.approx([3.0, 0.0, 1.0])


def test_optimal_thresholds_option():
    assert MTParams(thresholds="optimal:3").thresholds == (0.5, 0.25, 0.125)
    assert optimal_thresholds(1) == (0.5,)
    with pytest.raises(ValueError):
        MTParams(thresholds="optimal:x")
    with pytest.raises(ValueError):
        MTParams(thresholds=(1.0, -1.0))


def test_multi_step_state_shape_and_reset():
    from spikingjelly.activation_based import functional

    neuron = MTNeuron()
    x = torch.rand(2, 3, 4, 4) * 4
    out = neuron(x)
    assert out.shape == x.shape
    assert torch.all((out >= 0) & (out <= 3.75))
    functional.reset_net(neuron)
    assert neuron.v == 0.0


def test_optimal_thresholds_minimize_expected_quantization_error_by_monte_carlo():
    # v ~ U[0, 1], one step: the error |v − out| of the optimal halving set 1/2 … 1/16 is uniform on
    # [0, 1/16): expected 2^-(N+1) = 1/32, and no other 4-level set tried does better
    torch.manual_seed(0)
    v = torch.rand(400_000, dtype=torch.float64)

    def error(levels):
        return (v - MTNeuron(MTParams(thresholds=levels)).fire(v.clone())).abs().mean().item()

    optimal = error("optimal:4")
    assert optimal == pytest.approx(1 / 32, rel=0.01)
    for alternative in [(2, 1, 0.5, 0.25), (1, 0.5, 0.25, 0.125), (0.6, 0.3, 0.15, 0.075),
                        (0.4, 0.2, 0.1, 0.05), (0.5, 0.3, 0.1, 0.05), (0.5, 0.25, 0.2, 0.1)]:
        assert optimal < error(alternative), alternative


def test_if_threshold_option_scales_layer_threshold():
    from bench_suite.neurons.integrate_fire import IFNeuron, IFParams

    neuron = IFNeuron(IFParams(threshold=0.5), threshold=2.0)
    assert neuron.v_threshold == 1.0


@pytest.mark.parametrize("thresholds", [(2.0, 1.0, 0.5, 0.25), tuple(2.0**-k for k in range(10))])
def test_spike_count_of_the_quantization_equals_the_greedy_loop_on_channels_last(thresholds):
    # bit planes of the index in uint8 (≤ 8 levels) and int32 (more), counted in memory order
    torch.manual_seed(1)
    v = (torch.randn(3, 8, 6, 5) * 3).contiguous(memory_format=torch.channels_last)
    params = MTParams(thresholds=thresholds)
    fast, slow = MTNeuron(params, threshold=0.7), MTNeuron(params, threshold=0.7)
    slow.halving = False
    assert fast.halving
    out = fast.fire(v)
    assert int(fast.level_spikes(out)) == int(slow.level_spikes(slow.fire(v))) > 0


def test_statistics_per_position_and_spike_totals_over_steps_on_channels_last():
    torch.manual_seed(2)
    inputs = [(torch.randn(2, 4, 5, 3) * 2).contiguous(memory_format=torch.channels_last) for _ in range(3)]
    neuron = MTNeuron()
    neuron.record = "stats"
    loop = MTNeuron()
    loop.halving = False  # counts each output level by level
    expected_map, expected_spikes = torch.zeros(5, 3, dtype=torch.int64), 0
    with torch.inference_mode():
        for x in inputs:
            out = neuron(x)
            expected_map += (out != 0).sum(dim=(0, 1))
            expected_spikes += int(loop.level_spikes(out))
    assert torch.equal(neuron.event_maps[(5, 3)], expected_map)
    assert int(neuron.events) == int(expected_map.sum()) and int(neuron.spikes) == expected_spikes


@pytest.mark.parametrize("thresholds", [(2.0, 1.0, 0.5, 0.25), (3.0, 1.0)])
def test_straight_through_gradient_keeps_the_forward_and_passes_the_unclamped_range(thresholds):
    params = MTParams(thresholds=thresholds, gradient="straight-through")
    neuron = MTNeuron(params, threshold=0.5)
    top = (sum(thresholds) + min(thresholds)) * 0.5
    v = torch.tensor([-0.3, 0.1, 0.4, 0.9, top - 0.01, top + 0.2], requires_grad=True)
    out = neuron.fire(v)
    assert torch.equal(out.detach(), MTNeuron(MTParams(thresholds=thresholds), threshold=0.5).fire(v.detach()))
    out.sum().backward()
    assert v.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_per_level_is_the_default_and_differs_from_straight_through():
    assert MTParams().gradient == "levels"
    v = torch.linspace(0.05, 3.9, 50, requires_grad=True)
    MTNeuron(MTParams(gradient="levels")).fire(v).sum().backward()
    per_level = v.grad.clone()
    v.grad = None
    MTNeuron(MTParams(gradient="straight-through")).fire(v).sum().backward()
    assert torch.all(v.grad == 1.0)
    assert not torch.allclose(per_level, v.grad)


def test_unknown_gradient_is_refused():
    with pytest.raises(ValueError, match="gradient must be"):
        MTParams(gradient="ste")
