"""Quick-profile ANN recipes side by side: test score and training time of each, measured in one run.

    python benchmarks/ann_recipe.py [--datasets demo-vessels em] [--recipes reference cosine onecycle ...]
                                    [--data-root ../shared/data] [--threads N] [--fast]

Each recipe is the quick profile with a few ``--set`` overrides of the ANN's settings (learning-rate
schedule per batch, dihedral augmentation of the patches, class weights of the cross-entropy, the patch
count at the same number of batches, the rate); everything else (width 16, 12 epochs, Adam 2e-3, seed 0,
and a dataset's own ``profile_settings``, e.g. demo-scenes' one-cycle schedule, wherever a recipe does
not set the same key) stays. Every run trains one ANN in a fresh results folder,
in-process on all cores (or ``--threads``), so the times are comparable within one run of this script (say
what else was running; ``--threads 1`` lets two runs of it, one dataset each, share two cores evenly). It
prints the dataset's score (F1 for binary segmentation, mIoU for multi-class, PSNR for denoising), the wall
time of the run and the ratio to the reference recipe's time; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tempfile
from pathlib import Path

from common import bench_suite, cpu_flags, report_csv

RECIPES: dict[str, list[str]] = {
    "reference": [],  # quick as shipped (with the dataset's own profile_settings, if any)
    "cosine": ["ann_schedule=cosine"],
    "onecycle": ["ann_schedule=onecycle"],
    "dihedral": ["ann_augment=dihedral"],
    "cosine+dihedral": ["ann_schedule=cosine", "ann_augment=dihedral"],
    "onecycle+dihedral": ["ann_schedule=onecycle", "ann_augment=dihedral"],
    "median-frequency": ["class_weighting=median-frequency"],
    # the same number of batches: twice the patch positions, each seen half as often
    "patches-x2": ["patches_per_image=128", "ann_epochs=6"],
    "lr-x2": ["ann_lr=4e-3"],
}
SCORES = ("f1", "miou", "psnr")


def score(results: Path) -> tuple[str, float]:
    """The ANN's headline metric from the run's tidy CSV (mean over the test samples)."""
    text = report_csv(results)
    rows = list(csv.DictReader(io.StringIO(text)))
    for metric in SCORES:
        values = [float(row["value"]) for row in rows if row.get("metric") == metric and row.get("value")]
        if values:
            return metric, sum(values) / len(values)
    raise SystemExit(f"no {'/'.join(SCORES)} in the report of {results}:\n{text[:1000]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["demo-vessels", "em"])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--data-root", default=None, help="where real datasets are (e.g. ../shared/data)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: all cores)")
    parser.add_argument("--fast", action="store_true", help="a 1-epoch ANN: checks the script, measures nothing")
    args = parser.parse_args()
    from bench_suite.experiment.environment import cpu_model

    threads = args.threads or os.cpu_count()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {cpu_flags()}; quick profile, seed 0, in-process, "
          f"{threads} torch threads per run")
    table: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        data_root = ["--data-root", args.data_root] if args.data_root else ["--data-root", str(Path(scratch) / "data")]
        for dataset in args.datasets:
            base = ["run", "--plugin", "trainer=ann", "--dataset", dataset, "--profile", "quick", *data_root,
                    "--threads-per-worker", str(threads)]
            if args.fast:
                base += ["--set", "ann_epochs=1", "--set", "max_patches=64", "--set", "width=4"]
            # a first short run generates or checks the data outside the timings
            bench_suite(*base, "--set", "ann_epochs=1", "--results", str(Path(scratch) / f"warm-{dataset}"))
            for recipe in args.recipes:
                results = Path(scratch) / f"{dataset}-{recipe}"
                sets = [part for setting in RECIPES[recipe] for part in ("--set", setting)]
                seconds = bench_suite(*base, *sets, "--results", str(results))
                metric, value = score(results)
                table.setdefault(dataset, {})[recipe] = {"metric": metric, "value": value, "seconds": seconds}
                print(f"{dataset:>14} {recipe:>18}: {metric} {value:.4f}, {seconds:.0f} s", flush=True)
    summary = {}
    for dataset, recipes in table.items():
        reference = recipes.get("reference")
        for recipe, row in recipes.items():
            entry = {"metric": row["metric"], "value": round(row["value"], 4), "seconds": round(row["seconds"], 1)}
            if reference:
                entry["gain"] = round(row["value"] - reference["value"], 4)
                entry["time_ratio"] = round(row["seconds"] / reference["seconds"], 3)
            summary[f"{dataset}/{recipe}"] = entry
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
