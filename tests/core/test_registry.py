import sys
import textwrap

import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.registry import KINDS, Registry, get_registry


def test_builtins_are_registered_with_descriptions():
    registry = get_registry()
    for kind, name in [("neuron", "if"), ("neuron", "mt"), ("norm", "lw"), ("norm", "cw"), ("norm", "none"),
                       ("trainer", "ann"), ("trainer", "conv"), ("trainer", "asf"), ("model", "unet2d"),
                       ("dataset", "demo-vessels"), ("dataset", "demo-denoise")]:
        info = registry.get(kind, name)
        assert info.distribution == "bench-suite"
        assert info.description, f"{kind} {name} has no one-line description"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(BenchSuiteError, match=r"unknown neuron 'mtt' — did you mean 'mt'\? available: .*if"):
        get_registry().get("neuron", "mtt")


class _NeuronA(SpikingNeuron):
    """A neuron."""

    def fire(self, v):
        return (v >= 1).to(v.dtype)


class _NeuronB(_NeuronA):
    """Another neuron."""


def test_duplicate_name_disables_only_that_name_and_names_both_packages():
    registry = Registry()
    assert registry.register("neuron", "x", _NeuronA, "pkg-a")
    assert not registry.register("neuron", "x", _NeuronB, "pkg-b")
    assert registry.register("neuron", "y", _NeuronB, "pkg-b")
    with pytest.raises(BenchSuiteError, match="two neuron plugins are named 'x' \\(from 'pkg-a' and 'pkg-b'\\)"):
        registry.get("neuron", "x")
    assert registry.get("neuron", "y").obj is _NeuronB
    assert registry.names("neuron") == ["y"]


def test_a_class_that_breaks_its_contract_is_listed_as_broken_naming_what_is_missing():
    class NoFire(SpikingNeuron):
        """Forgot fire."""

    class OldNorm:
        """A norm written against the old signature."""

        Params = None

        def normalize(self, structure, calibration, cache=None):
            return None

    class NoParams:
        """A trainer without Params."""

        uses = frozenset({"T"})

        def run(self, ctx):
            return None

    registry = Registry()
    assert not registry.register("neuron", "nofire", NoFire, "pkg")
    assert not registry.register("norm", "old", OldNorm, "pkg")
    assert not registry.register("trainer", "noparams", NoParams, "pkg")
    assert not registry.register("model", "notaclass", object(), "pkg")
    errors = {b.name: b.error for b in registry.broken}
    assert "does not implement fire(v)" in errors["nofire"]
    assert "its normalize does not accept make_neuron" in errors["old"]
    assert "it has no Params attribute" in errors["noparams"]
    assert "not a class" in errors["notaclass"]
    with pytest.raises(BenchSuiteError, match="norm 'old' from 'pkg' is installed but cannot be used: breaks the norm "
                                              "contract: its normalize does not accept make_neuron"):
        registry.get("norm", "old")


def test_every_builtin_meets_its_contract():
    from bench_suite.core.builtins import BUILTIN_PLUGINS
    from bench_suite.core.contracts import contract_problems

    registry = get_registry()
    for kind, name, _ in BUILTIN_PLUGINS:
        assert contract_problems(kind, registry.get(kind, name).obj) == [], (kind, name)


def write_distribution(folder, name, entry_points: str):
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_broken_third_party_plugin_is_listed_and_others_keep_working(tmp_path, monkeypatch):
    write_distribution(tmp_path, "broken-pkg", """
        [bench_suite.neurons]
        fancy = broken_pkg_missing_module:Fancy
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = get_registry(reload=True)
    try:
        assert [(b.name, b.distribution) for b in registry.broken] == [("fancy", "broken-pkg")]
        assert "ModuleNotFoundError" in registry.broken[0].error
        assert registry.get("neuron", "mt")
        with pytest.raises(BenchSuiteError, match="'fancy' from 'broken-pkg' is installed but cannot be used: "
                                                  "ModuleNotFoundError"):
            registry.get("neuron", "fancy")
    finally:
        sys.path.remove(str(tmp_path))
        get_registry(reload=True)


def test_kinds():
    assert KINDS == ("neuron", "norm", "trainer", "dataset", "model")


def test_a_third_party_plugin_named_like_a_builtin_disables_that_name_only(tmp_path, monkeypatch):
    (tmp_path / "clash_pkg.py").write_text(
        "from bench_suite.neurons.multi_threshold import MTNeuron\n\n"
        "class OtherMT(MTNeuron):\n    \"\"\"Someone else's MT.\"\"\"\n"
    )
    write_distribution(tmp_path, "clash-pkg", """
        [bench_suite.neurons]
        mt = clash_pkg:OtherMT
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = get_registry(reload=True)
    try:
        with pytest.raises(BenchSuiteError, match="named 'mt' \\(from 'bench-suite' and 'clash-pkg'\\)"):
            registry.get("neuron", "mt")
        assert registry.get("neuron", "if").distribution == "bench-suite"
        assert "mt" not in registry.names("neuron")
    finally:
        sys.path.remove(str(tmp_path))
        get_registry(reload=True)
