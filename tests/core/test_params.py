import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import PluginChoice, build_params, parse_plugin_option
from bench_suite.neurons.multi_threshold import MTParams
from bench_suite.norms.scaling import CWParams


def test_parse_plugin_option_with_parameters_and_lists():
    choice = parse_plugin_option("neuron=mt(thresholds=[2,1,0.5], x=1)")
    assert choice == PluginChoice("neuron", "mt", (("thresholds", "[2,1,0.5]"), ("x", "1")))
    assert parse_plugin_option("norm=cw") == PluginChoice("norm", "cw", ())
    assert choice.label() == "mt(thresholds=[2,1,0.5],x=1)"


@pytest.mark.parametrize("text", ["neuron", "neuron=", "=mt", "neuron=mt(thresholds)", "neuron=mt(a=1"])
def test_malformed_plugin_option_is_one_clear_error(text):
    with pytest.raises(BenchSuiteError, match="--plugin"):
        parse_plugin_option(text)


def test_build_params_coerces_and_validates():
    params = build_params(MTParams, {"thresholds": "[1, 0.5, 0.25]"}, "neuron 'mt'")
    assert params.thresholds == (1.0, 0.5, 0.25)
    assert build_params(MTParams, {"thresholds": "optimal:2"}, "neuron 'mt'").thresholds == (0.5, 0.25)
    assert build_params(CWParams, {"percentile": "99", "author_compat": "true"}, "norm 'cw'") == CWParams(99.0, True)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"percentil": "99"}, "did you mean 'percentile'"),
        ({"percentile": "abc"}, "not a valid float"),
        ({"percentile": "20"}, "between 50 and 100"),
        ({"author_compat": "maybe"}, "not a boolean"),
    ],
)
def test_bad_parameters_name_the_plugin_and_the_fix(raw, message):
    with pytest.raises(BenchSuiteError, match=message) as info:
        build_params(CWParams, raw, "norm 'cw'")
    assert "norm 'cw'" in str(info.value)


def test_plugin_without_params_rejects_parameters():
    with pytest.raises(BenchSuiteError, match="takes no parameters"):
        build_params(None, {"a": "1"}, "trainer 'conv'")
