"""What the benchmark scripts share: the machine's description and a timed ``bench-suite`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def cpu_flags() -> str:
    """The instruction-set flags that decide CPU speed here (AVX-512, its bf16, AMX), yes or no each."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split())
    except (OSError, IndexError):
        return "flags unknown"
    wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in wanted)


def bench_suite(*args: str) -> float:
    """Run ``bench-suite ARGS`` in a subprocess; its wall time in seconds, or exit with its output."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bench_suite", *args], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    if result.returncode != 0:
        raise SystemExit(f"bench-suite {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - started


def report_csv(results: Path) -> str:
    """The tidy CSV of the latest run in the results folder ``results`` (``bench-suite report --format csv``)."""
    return subprocess.run([sys.executable, "-m", "bench_suite", "report", "--format", "csv", "--results",
                           str(results)], capture_output=True, text=True, check=True).stdout
