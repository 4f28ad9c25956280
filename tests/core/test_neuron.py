"""The neuron base: one set of hooks for grad and no-grad, and the true Σ input for the ASF gate."""

import pytest
import torch

from bench_suite.core.errors import PluginContractError
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.snn.network import functional


class HalvingReset(IFNeuron):
    """Halves v on a spike (overrides the documented reset hook only)."""

    def neuronal_reset(self, out):
        self.v = torch.where(out != 0, self.v / 2, self.v)


@pytest.mark.parametrize("grad", [True, False])
def test_an_overridden_reset_runs_with_and_without_autograd(grad):
    neuron = HalvingReset()
    functional.reset_net(neuron)
    with torch.set_grad_enabled(grad):
        for value in (1.5, 0.0):
            neuron(torch.full((1, 1), value, requires_grad=grad))
    assert float(neuron.v.detach()) == pytest.approx(0.75)  # before the fix: 0.5 without autograd


def test_the_leaky_gate_reads_the_true_sum_of_inputs(example_package):
    from bench_suite_example.neurons import LIFNeuron, LIFParams

    neuron = LIFNeuron(LIFParams(beta=0.5))
    functional.reset_net(neuron)
    neuron.record = True
    with torch.no_grad():
        for value in (0.8, 0.8, -1.5):
            neuron(torch.full((1, 1), value))
    assert float(neuron.accumulated_input()) == pytest.approx(0.1)  # v + Σout would say −0.4: gate closed
    assert bool(neuron.accumulated_input() > 0)


def test_subtract_reset_neurons_read_the_sum_off_the_membrane_and_agree():
    neuron = IFNeuron()
    assert neuron._sums_from_membrane()
    functional.reset_net(neuron)
    neuron.record = True
    inputs = torch.randn(7, 2, 3)
    with torch.no_grad():
        for x in inputs:
            neuron(x)
    assert torch.allclose(neuron.accumulated_input(), inputs.sum(0), atol=1e-6)


def test_a_wrong_output_shape_names_the_neuron_and_both_shapes():
    class Flattening(IFNeuron):
        def fire(self, v):
            return super().fire(v).flatten()

    neuron = Flattening()
    neuron.plugin_label = "neuron 'flat' (my-package)"
    functional.reset_net(neuron)
    with pytest.raises(PluginContractError, match=r"neuron 'flat' \(my-package\) returned an output of shape \(6,\) "
                                                  r"for an input of shape \(2, 3\)"):
        with torch.no_grad():
            neuron(torch.ones(2, 3))
