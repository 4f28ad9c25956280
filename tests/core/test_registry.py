import sys
import textwrap

import pytest

from bench_suite.core.errors import BenchSuiteError
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


def test_duplicate_name_names_both_packages():
    registry = Registry()
    registry.register("neuron", "x", object, "pkg-a")
    with pytest.raises(BenchSuiteError, match="'pkg-a' and one from 'pkg-b'"):
        registry.register("neuron", "x", object, "pkg-b")


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
        with pytest.raises(BenchSuiteError, match="installed but broken"):
            registry.get("neuron", "fancy")
    finally:
        sys.path.remove(str(tmp_path))
        get_registry(reload=True)


def test_kinds():
    assert KINDS == ("neuron", "norm", "trainer", "dataset", "model")
