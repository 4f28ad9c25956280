"""Without SpikingJelly: commands that do not simulate work; the others say how to install it, in one line."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Hide SpikingJelly from the child process: its modules cannot be imported and its metadata is absent.
BLOCKER = textwrap.dedent("""
    import importlib.abc, importlib.metadata, sys

    class NoSpikingJelly(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "spikingjelly" or name.startswith("spikingjelly."):
                raise ModuleNotFoundError(f"No module named '{name}'", name=name)
            return None

    sys.meta_path.insert(0, NoSpikingJelly())
    _version = importlib.metadata.version

    def version(name):
        if name == "spikingjelly":
            raise importlib.metadata.PackageNotFoundError(name)
        return _version(name)

    importlib.metadata.version = version
    from bench_suite.cli import main
    sys.argv = ["bench-suite", *sys.argv[1:]]
    main()
""")


def bench_suite_without_spikingjelly(*args):
    result = subprocess.run([sys.executable, "-c", BLOCKER, *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    return result.returncode, result.stdout, result.stderr


def test_data_check_works_without_spikingjelly(shared_data):
    code, out, err = bench_suite_without_spikingjelly("data", "check", "em", "--data-root", shared_data)
    assert code == 0, err
    assert out.startswith("em: OK")


def test_run_says_how_to_install_it_in_one_sentence_and_writes_no_store(tmp_path: Path):
    code, out, err = bench_suite_without_spikingjelly("run", "--profile", "smoke", "--results", tmp_path / "r")
    assert code == 2
    assert err.strip() == ("error: SpikingJelly is not installed, and every spiking network needs it; install it "
                           "with `pip install --no-deps spikingjelly==2.0.0` (without its dependencies, which "
                           "would pull a CUDA build of torch)")
    assert "Traceback" not in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("args", [("--help",), ("list", "suites"), ("data", "info", "drive")])
def test_commands_that_simulate_nothing_work(args, tmp_path):
    code, out, err = bench_suite_without_spikingjelly(*args, "--data-root", tmp_path) if args[0] == "data" \
        else bench_suite_without_spikingjelly(*args)
    assert code == 0, err
    assert "SpikingJelly" not in err


def test_report_works_without_spikingjelly(tmp_path):
    from typer.testing import CliRunner

    from bench_suite.cli.app import app

    results = tmp_path / "results"
    first = CliRunner().invoke(app, ["run", "--profile", "smoke", "--plugin", "trainer=ann", "--set", "ann_epochs=1",
                                     "--results", str(results), "--data-root", str(tmp_path / "data")])
    assert first.exit_code == 0, first.output
    code, out, err = bench_suite_without_spikingjelly("report", "--results", results)
    assert code == 0, err
    assert "| demo-vessels | ann |" in out
