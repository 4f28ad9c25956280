"""The conformance kit plugin authors (and our own tests) run: one ``check_<kind>`` per plugin kind.

    from bench_suite.testing import check_neuron

    def test_my_neuron_meets_the_contract():
        check_neuron(MyNeuron)            # raises ConformanceError listing every failed check
"""

from bench_suite.testing.checks import (
    CheckResult,
    ConformanceError,
    check_dataset,
    check_model,
    check_neuron,
    check_norm,
    check_trainer,
    plugin_checks,
    run_checks,
)

__all__ = [
    "CheckResult", "ConformanceError", "check_dataset", "check_model", "check_neuron", "check_norm",
    "check_trainer", "plugin_checks", "run_checks",
]
