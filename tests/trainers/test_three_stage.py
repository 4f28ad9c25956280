import io

import pandas as pd
import torch
from typer.testing import CliRunner

from bench_suite.cli import app
from bench_suite.encoders import make_encoder
from bench_suite.trainers.three_stage import RescaledCoding


def test_rescaled_coding_keeps_the_first_conv_output_inside_the_image():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 3, 3, padding=1)
    images = torch.randn(4, 1, 12, 12) * 2 + 1  # z-scored-like, outside [0, 1]
    for kind in ("poisson", "ternary"):
        coding = RescaledCoding.fit(make_encoder(kind), images, kind)
        mapped = ((images - coding.shift) / coding.scale).clamp(coding.low, coding.high)
        inside = ((images - coding.shift) / coding.scale).abs().le(1).all()
        rescaled = torch.nn.Conv2d(1, 3, 3, padding=1)
        rescaled.load_state_dict(conv.state_dict())
        coding.absorb_into(rescaled)
        with torch.no_grad():
            original, absorbed = conv(images), rescaled(mapped)
        interior = (slice(None), slice(None), slice(1, -1), slice(1, -1))
        if inside:
            assert torch.allclose(original[interior], absorbed[interior], atol=1e-4)
        spikes = coding.encode(images, 0, torch.Generator().manual_seed(0))
        allowed = {0.0, 1.0} if kind == "poisson" else {-1.0, 0.0, 1.0}
        assert set(torch.unique(spikes).tolist()) <= allowed


def test_three_stage_on_real_hippocampus_with_two_folds(shared_data, tmp_path):
    # no model given: the 3-D U-Net is chosen for a volume dataset
    args = ["run", "--plugin", "trainer=three-stage(conversion_steps=8,epochs=1)", "--plugin", "neuron=if",
            "--dataset", "hippocampus", "--folds", "2", "--profile", "smoke",
            "-T", "3", "--set", "ann_epochs=1", "--set", "width=4", "--data-root", str(shared_data),
            "--results", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    csv = CliRunner().invoke(app, ["report", "--format", "csv", "--results", str(tmp_path)]).output
    frame = pd.read_csv(io.StringIO(csv))
    assert set(frame["fold"]) == {0, 1}
    assert set(frame["model"]) == {"unet3d"}
    assert {"dice", "hd95", "assd", "ann/dice", "converted/dice"} <= set(frame["metric"])
    assert frame["value"].notna().all()
    markdown = CliRunner().invoke(app, ["report", "--results", str(tmp_path)]).output
    assert "±" in markdown  # mean ± std over the two folds
