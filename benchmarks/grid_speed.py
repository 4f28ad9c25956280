"""A grid's wall time in-process against a local Dask cluster, measured in one run on this machine.

    python benchmarks/grid_speed.py [--grids smoke quick] [--workers 2]

For each grid (smoke: 8 demo-vessels cells, IF/MT × LW/CW × conv/asf at T = 4; quick: the demo's 5 cells at
the quick profile, T = 10) it runs ``bench-suite run`` three ways, each in a fresh results folder and with
the datasets already generated: in-process with torch on all cores, in-process with one thread per cell,
and ``--workers N --threads-per-worker 1``, and prints the wall times and ratios. Each run's tidy CSV is
compared with the one-thread in-process run's (they must be equal: same seeds, same threads per cell).
Where the gain comes from: the cells after the ANN are independent and run N at a time; the ANN task is
one and runs on one worker, and the cluster costs its start-up (a few seconds). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from common import bench_suite, cpu_flags, report_csv

GRIDS = {
    "smoke": ["--plugin", "neuron=if", "--plugin", "neuron=mt", "--plugin", "norm=lw", "--plugin", "norm=cw",
              "--plugin", "trainer=conv", "--plugin", "trainer=asf", "--dataset", "demo-vessels", "-T", "4",
              "--profile", "smoke"],
    "quick": ["--plugin", "neuron=if", "--plugin", "neuron=mt", "--plugin", "norm=cw", "--plugin", "trainer=ann",
              "--plugin", "trainer=conv", "--plugin", "trainer=asf", "--dataset", "demo-vessels", "-T", "10",
              "--profile", "quick"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", nargs="+", default=["smoke", "quick"], choices=sorted(GRIDS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="a 2-epoch ANN: checks the script, measures nothing")
    args = parser.parse_args()
    from bench_suite.experiment.environment import cpu_model

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {cpu_flags()}; {args.workers} workers × 1 thread")
    ratios = {}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        for name in args.grids:
            grid = GRIDS[name] + (["--set", "ann_epochs=2", "--set", "max_patches=64"] if args.fast else [])
            # generate the dataset once, outside the timings
            bench_suite("run", *grid, "--plugin", "trainer=ann", "--set", "ann_epochs=1",
                        "--results", str(Path(scratch) / f"warm-{name}"), "--data-root", str(data))
            times, tables = {}, {}
            for way, extra in (("in-process, all threads", []), ("in-process, 1 thread", ["--threads-per-worker", "1"]),
                               (f"--workers {args.workers}", ["--workers", str(args.workers),
                                                              "--threads-per-worker", "1"])):
                results = Path(scratch) / f"{name}-{len(times)}"
                times[way] = bench_suite("run", *grid, *extra, "--results", str(results), "--data-root", str(data))
                tables[way] = report_csv(results)
            same = tables["in-process, 1 thread"] == tables[f"--workers {args.workers}"]
            baseline = times["in-process, all threads"]
            print(f"{name} grid: " + ", ".join(f"{way} {seconds:.1f} s" for way, seconds in times.items())
                  + f"; workers ÷ in-process (all threads) = {times[f'--workers {args.workers}'] / baseline:.2f}, "
                  f"÷ in-process (1 thread) = {times[f'--workers {args.workers}'] / times['in-process, 1 thread']:.2f}"
                  f"; identical tables (1 thread vs workers): {same}")
            ratios[f"{name}_workers_over_in_process"] = round(times[f"--workers {args.workers}"] / baseline, 3)
            ratios[f"{name}_workers_over_one_thread"] = round(
                times[f"--workers {args.workers}"] / times["in-process, 1 thread"], 3)
            ratios[f"{name}_identical"] = same
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
