"""Figures from hand-made frames: each function writes a non-empty PNG and PDF and returns their paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.results import figures

CELL = {"model": "unet2d", "norm": "cw", "variant": "", "fold": -1}


def assert_written(paths, stem):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    for path in paths:
        assert path.stem == stem and path.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_metric_vs_T(tmp_path):
    rows = [{**CELL, "dataset": "drive", "trainer": "ann", "neuron": "-", "norm": "-", "T": 0, "seed": s,
             "metric": "f1", "value": 0.80, "n": 20} for s in (0, 1)]
    for neuron in ("if", "mt"):
        for T in (4, 8, 12):
            rows += [{**CELL, "dataset": "drive", "trainer": "asf", "neuron": neuron, "T": T, "seed": s,
                      "metric": "f1", "value": 0.8 - 1 / T + 0.01 * s, "n": 20} for s in (0, 1)]
    paths = figures.metric_vs_T(pd.DataFrame(rows), "f1", tmp_path)
    assert_written(paths, "metric_vs_T_f1")
    with pytest.raises(BenchSuiteError, match="no 'miou' values"):
        figures.metric_vs_T(pd.DataFrame(rows), "miou", tmp_path)


def test_firing_rate_per_layer(tmp_path):
    layers = ["down.0.1", "down.0.3", "bottom.1", "ups.0.1", "pools_0_respike"]
    rows = []
    for neuron in ("if", "mt"):
        for seed in (0, 1):
            for position, layer in enumerate(layers):
                rows.append({"dataset": "hippocampus(folds=5,fold=0)", "trainer": "asf", "neuron": neuron,
                             "norm": "cw", "T": 10, "seed": seed, "position": position, "layer": layer,
                             "kind": "IFNeuron", "neurons": 1000, "time_steps": 10, "events": 500.0 * (position + 1),
                             "spikes": 500.0, "synops": 1e5, "firing_rate": 0.05 * (position + 1)})
    paths = figures.firing_rate_per_layer(pd.DataFrame(rows), tmp_path)
    assert_written(paths, "firing_rate_per_layer")
    without_rate = pd.DataFrame(rows).drop(columns="firing_rate")
    assert_written(figures.firing_rate_per_layer(without_rate, tmp_path / "b"), "firing_rate_per_layer")
    with pytest.raises(BenchSuiteError, match="no per-layer spike statistics"):
        figures.firing_rate_per_layer(pd.DataFrame(columns=rows[0].keys()), tmp_path)


def test_convergence(tmp_path):
    rows = []
    for trainer, stage in (("three-stage(loss=bce-dice)", "three-stage"), ("dt", "dt")):
        for seed in (0, 1):
            rows += [{"dataset": "demo-vessels", "trainer": trainer, "neuron": "if", "norm": "-", "T": 20,
                      "seed": seed, "stage": stage, "epoch": batch, "metric": "batch_loss",
                      "value": 1 / batch + 0.01 * seed} for batch in range(1, 40)]
            rows += [{"dataset": "demo-vessels", "trainer": trainer, "neuron": "if", "norm": "-", "T": 20,
                      "seed": seed, "stage": stage, "epoch": epoch, "metric": "loss", "value": 1 / epoch}
                     for epoch in range(1, 6)]
    paths = figures.convergence(pd.DataFrame(rows), tmp_path)
    assert_written(paths, "convergence")


def test_qualitative_panels(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((2, 32, 32))
    truth = (image > 0.5).astype(np.uint8)
    predictions = {"ANN": truth, "MT+FT": np.roll(truth, 1, axis=-1)}
    paths = figures.qualitative_panels(image, truth, predictions, tmp_path)
    assert_written(paths, "qualitative")
    colour = rng.random((2, 3, 32, 32))  # channels first, denoising: float predictions, no labels
    paths = figures.qualitative_panels(colour, colour, {"denoised": colour * 0.9}, tmp_path, stem="denoise")
    assert_written(paths, "denoise")
    with pytest.raises(BenchSuiteError, match="1 images in 'bad' but 2 inputs"):
        figures.qualitative_panels(image, truth, {"bad": truth[:1]}, tmp_path)
