"""Failures name their cause (issue 11): shapes, multiples, literal text, tracebacks, missing cells."""

import sqlite3

import torch
from torch import nn
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.core.registry import get_registry
from bench_suite.models.unet import UNet2d

QUICK = ["--profile", "smoke", "--set", "ann_epochs=1", "--set", "patches_per_image=4"]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


class HalfSizeModel(UNet2d):
    """A U-Net whose output is half the input's size (a broken model)."""

    def build(self, task, profile_width, out_channels=None):
        inner = super().build(task, profile_width, out_channels)
        return nn.Sequential(inner, nn.AvgPool2d(2))


def test_norm_tb_in_conv_and_asf_cells_through_the_cli(tmp_path):
    code, output = invoke("run", "--plugin", "norm=tb", "--plugin", "neuron=if", "--plugin", "trainer=conv",
                          "--plugin", "trainer=asf", "--dataset", "demo-vessels", *QUICK,
                          "--results", tmp_path / "r", "--data-root", tmp_path / "d")
    assert code == 0, output
    assert "| demo-vessels | conv | if | tb | 10 |" in output and "| demo-vessels | asf | if | tb | 10 |" in output
    assert "failed" not in output


def test_a_model_of_the_wrong_shape_names_the_model_and_the_shapes(tmp_path):
    registry = get_registry()
    registry.register("model", "half-test", HalfSizeModel, "test-package")
    try:
        code, output = invoke("run", "--plugin", "model=half-test", "--plugin", "trainer=ann", *QUICK,
                              "--results", tmp_path / "r", "--data-root", tmp_path / "d")
    finally:
        registry._plugins["model"].pop("half-test")
    assert code == 1
    assert "model 'half-test' maps an input of shape (1, 1, 32, 32) to (1, 2, 16, 16), but the task needs " \
           "(1, 2, 32, 32)" in output


def test_patches_the_model_cannot_take_are_one_sentence_with_the_multiple(tmp_path):
    code, output = invoke("run", "--plugin", "model=unet2d(depth=6)", "--plugin", "trainer=ann", *QUICK,
                          "--results", tmp_path / "r", "--data-root", tmp_path / "d")
    assert code == 1
    assert ("dataset 'demo-vessels' gives training patches of 32 pixels, but model 'unet2d(depth=6)' needs sides "
            "that are a multiple of 64") in output
    assert "Sizes of tensors must match" not in output


def test_error_text_is_printed_literally():
    code, output = invoke("run", "--plugin", "neuron=mt(thresholds=[a,b])")
    assert code == 2
    assert "got '[a,b]'" in output  # Rich markup used to swallow the brackets: "got ''"


def test_debug_and_show_give_a_failed_cells_traceback(tmp_path):
    from bench_suite.core.neuron import SpikingNeuron

    class Broken(SpikingNeuron):
        """Raises inside its dynamics."""

        def fire(self, v):
            raise ZeroDivisionError("the neuron's own bug")

    registry = get_registry()
    registry.register("neuron", "broken-test", Broken, "test-package")
    results = tmp_path / "r"
    try:
        code, output = invoke("run", "--plugin", "neuron=broken-test", "--plugin", "neuron=if", "--plugin",
                              "trainer=conv", *QUICK, "--debug", "--results", results, "--data-root", tmp_path / "d")
    finally:
        registry._plugins["neuron"].pop("broken-test")
    assert code == 1
    assert "ZeroDivisionError: the neuron's own bug" in output and 'in fire' in output  # --debug: the traceback
    code, shown = invoke("show", "--results", results)
    assert code == 0 and "failed" in shown and "the neuron's own bug" in shown
    code, shown = invoke("show", "--debug", "--results", results)
    assert "Traceback (most recent call last)" in shown and 'raise ZeroDivisionError("the neuron\'s own bug")' in shown
    code, report = invoke("report", "--results", results)
    assert "1 cell(s) failed; see why with bench-suite show" in report


def test_a_report_of_a_partly_finished_run_names_the_missing_cells(tmp_path):
    results = tmp_path / "r"
    code, output = invoke("run", "--plugin", "trainer=ann", "--plugin", "trainer=conv", "--plugin", "neuron=if",
                          *QUICK, "--results", results, "--data-root", tmp_path / "d")
    assert code == 0, output
    with sqlite3.connect(results / "bench-suite.sqlite") as conn:
        (run_id,) = conn.execute("select id from runs").fetchone()
        conn.execute("delete from cells where cell_key like '%\"trainer\": \"conv\"%'")  # as if never computed
    code, report = invoke("report", "--results", results)
    assert code == 0
    assert "| demo-vessels | ann |" in report
    assert (f"run {run_id} is not finished: 1 of 2 cells are missing from this report (demo-vessels conv if cw T=10 "
            f"seed=0 (pending)); finish it with bench-suite run --resume {run_id} --results {results}") in report


def test_bare_run_and_seeds_run_the_same_grid():
    from bench_suite.cli.app import build_spec

    bare, demo = build_spec([], [], [], None, None, [], None)
    seeded, _ = build_spec([], [], [], "3", None, [], None)
    assert demo and bare.choices == seeded.choices and seeded.seeds == (0, 1, 2)
    assert [c.name for c in bare.choices["trainer"]] == ["ann", "conv", "asf"]
    assert [c.name for c in bare.choices["neuron"]] == ["if", "mt"]


def test_a_profile_field_chooses_the_ann_optimizer(monkeypatch):
    import dataclasses

    from bench_suite.core.contracts import NullProgress
    from bench_suite.core.profiles import PROFILES
    from bench_suite.testing.checks import tiny_bundle, tiny_unet
    from bench_suite.trainers import ann

    chosen = []
    monkeypatch.setitem(ann.OPTIMIZERS, "rmsprop", lambda params, lr: chosen.append(("rmsprop", lr)) or
                        torch.optim.SGD(params, lr=lr))
    bundle = tiny_bundle()
    profile = dataclasses.replace(PROFILES["smoke"], ann_epochs=1, ann_optimizer="rmsprop", ann_lr=3e-3)
    ann.train_ann(tiny_unet(bundle.task), bundle, profile, 0, lambda *row: None, NullProgress())
    assert chosen == [("rmsprop", 3e-3)]
