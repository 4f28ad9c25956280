"""The example plugins meet their contracts: one conformance-kit call per plugin.

Run with ``pytest plugins/bench-suite-example/tests`` (bench-suite and this package installed). Each
``check_<kind>`` raises ``ConformanceError`` listing every failed check with what it expected and found.
"""

import pytest
from bench_suite_example.datasets import TinyStripes
from bench_suite_example.neurons import LIFNeuron, LIFParams
from bench_suite_example.norms import MaxNorm, MaxNormParams
from bench_suite_example.trainers import SGDFinetuneParams, SGDFinetuneTrainer

from bench_suite.testing import check_dataset, check_neuron, check_norm, check_trainer


def test_lif_neuron():
    check_neuron(LIFNeuron)


def test_lif_neuron_with_other_parameters():
    check_neuron(LIFNeuron, LIFParams(beta=0.5, surrogate="atan"))


def test_max_norm():
    check_norm(MaxNorm)


def test_robust_scaled_max_norm():
    check_norm(MaxNorm, MaxNormParams(scale=0.8, robust=True))


def test_sgd_finetune_trainer():
    check_trainer(SGDFinetuneTrainer)


def test_tiny_stripes_dataset():
    check_dataset(TinyStripes)


@pytest.mark.parametrize("params, message", [
    (lambda: LIFParams(beta=2), "beta must be in"),
    (lambda: MaxNormParams(scale=0), "scale must be between"),
    (lambda: SGDFinetuneParams(momentum=1.0), "momentum must be in"),
])
def test_parameters_are_validated(params, message):
    with pytest.raises(ValueError, match=message):
        params()
