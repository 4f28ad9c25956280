"""Where and how a cell computes: device, precision, determinism, threads; and what each stage cost.

Only ``experiment/`` decides where a cell runs: the runner resolves an :class:`Environment` into a torch
device on the worker that computes the cell, every other room follows the device of the tensors and
modules it is handed. :class:`StageMeter` records, per stage (ANN, calibration, fine-tuning, evaluation),
the wall time, the peak resident memory of the process and the peak device memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import functools
import os
import platform
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any, Literal

import torch

from bench_suite import __version__
from bench_suite.core.errors import BenchSuiteError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: cuBLAS needs this before the first CUDA call to be deterministic (PyTorch's reproducibility notes)
CUBLAS_WORKSPACE = ":4096:8"


@dataclasses.dataclass(frozen=True)
class Environment:
    """How every cell of a run computes. ``device`` is resolved on the worker (``auto``: CUDA if present,
    else MPS, else the CPU); ``threads`` 0 leaves torch's default (all cores)."""

    device: str = "auto"
    precision: Precision = "fp32"
    deterministic: bool = False
    threads: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BenchSuiteError(f"--precision '{self.precision}' is not one of {', '.join(PRECISIONS)}")
        if self.threads < 0:
            raise BenchSuiteError(f"--threads-per-worker {self.threads}: give a positive number of threads")
        parse_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Environment:
        return cls(**(data or {}))


def parse_device(name: str) -> None:
    """Refuse a device name that can never be valid, with one sentence (availability is checked later)."""
    text = str(name).strip()
    if text in ("auto", "cpu", "cuda", "mps"):
        return
    if text.startswith("cuda:") and text[5:].isdigit():
        return
    raise BenchSuiteError(f"--device '{name}' is not one of auto, cpu, cuda, cuda:N, mps")


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name`` on this machine, or one sentence saying why it is not there."""
    parse_device(name)
    if name in ("auto", "cuda") and torch.cuda.is_available():
        worker = dask_worker_index()
        if worker is not None and torch.cuda.device_count() > 1:
            # one GPU per worker of a local cluster: worker k computes on GPU k (mod the number of GPUs)
            return torch.device(f"cuda:{worker % torch.cuda.device_count()}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchSuiteError(
                f"--device {name}: this torch ({torch.__version__}) sees no CUDA device; install the CUDA build of "
                "torch for your driver (see the README) or use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BenchSuiteError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                                  f"numbered 0 to {torch.cuda.device_count() - 1}")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BenchSuiteError(f"--device {name}: MPS (Apple GPU) is not available here; use --device cpu")
    return device


def dask_worker_index() -> int | None:
    """The number of the local Dask worker running this code (None outside one, or for named workers)."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return None
    return int(name) if isinstance(name, int) or str(name).isdigit() else None


#: glibc mallopt parameters (malloc.h) and the values bench-suite sets: blocks up to 512 MiB come from the
#: heap, and up to 1 GiB of freed heap is kept for the next allocation instead of going back to the OS
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES = 512 << 20, 1 << 30
_allocator_tuned: bool | None = None


def tune_allocator() -> bool:
    """Keep freed memory in the process (glibc's ``mallopt``); True where it was set.

    Left to its defaults, glibc hands big freed blocks back to the OS and maps them again, so each
    activation tensor of a time step (megabytes to hundreds of megabytes) is page-faulted and zeroed afresh
    — dear in a virtual machine: on this project's 2-core VM the spike-statistics simulation of an
    evaluation ran 1.4x faster with the blocks kept (a 19 MB `out != 0` went from 27 to 8 ms;
    benchmarks/eval_speed.py). The cost is that up to 1 GiB of freed memory stays resident, which the
    per-stage peak RSS then includes. Other C libraries (musl, macOS) keep their own behaviour.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        _allocator_tuned = False
        if sys.platform.startswith("linux"):
            try:
                mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
            except (OSError, AttributeError):  # not glibc
                return False
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _allocator_tuned = (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
    return _allocator_tuned


def apply(environment: Environment) -> torch.device:
    """Set threads, determinism and the allocator for this process and return the cell's device."""
    tune_allocator()
    if environment.threads:
        torch.set_num_threads(environment.threads)
    if environment.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(environment.deterministic)
    torch.backends.cudnn.deterministic = environment.deterministic
    torch.backends.cudnn.benchmark = not environment.deterministic  # autotuning unless asked otherwise
    return resolve_device(environment.device)


def keeps_process_settings(function):
    """Run ``function`` (a cell or ANN task that calls :func:`apply`) and put the process's torch threads and
    determinism flags back afterwards: in-process, one cell's ``--threads-per-worker`` must not leak into
    the next cell or into the caller (a notebook, a test)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                 torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(saved[0])
            torch.use_deterministic_algorithms(saved[1])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]

    return wrapper


def autocast(device: torch.device, precision: str):
    """Mixed precision for ANN training and the spiking simulation; fp32: nothing changes."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def versions(device: torch.device | None = None) -> dict[str, str]:
    """Software versions, and for a GPU its name, CUDA, cuDNN and driver versions."""
    found = {"bench-suite": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "spikingjelly", "numpy", "scikit-image"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["torch_threads"] = str(torch.get_num_threads())
    found["cpu"] = cpu_model()
    if device is not None:
        found["device"] = str(device)
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            found["device_name"] = torch.cuda.get_device_name(index)
            found["cuda"] = str(torch.version.cuda)
            found["cudnn"] = str(torch.backends.cudnn.version())
            driver = getattr(torch._C, "_cuda_getDriverVersion", None)
            if driver is not None:
                value = driver()
                found["cuda_driver"] = f"{value // 1000}.{value % 1000 // 10}"  # the driver's CUDA API version
        else:
            found["device_name"] = found["cpu"] if device.type == "cpu" else device.type
    return found


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- what a stage cost ---------------------------------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Linux resets the process's peak RSS (VmHWM) when 5 is written to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory of this process since the last reset, in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StageMeter:
    """``with meter.stage("ann"): ...`` records seconds, peak RSS and peak device memory of the stage.

    Stages may nest (calibration inside a trainer's run): each is measured on its own, and a stage that
    runs twice (two ANNs for two losses) adds its seconds and keeps the larger peaks."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.stages: dict[str, dict[str, float]] = {}
        self._rss_resettable = _reset_peak_rss()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        cuda = self.device is not None and self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        if self._rss_resettable:
            _reset_peak_rss()
        started = time.perf_counter()
        try:
            yield
        finally:
            if cuda:
                torch.cuda.synchronize(self.device)
            entry = self.stages.setdefault(name, {"seconds": 0.0, "peak_rss_mib": 0.0})
            entry["seconds"] += time.perf_counter() - started
            entry["peak_rss_mib"] = max(entry["peak_rss_mib"], peak_rss_mib())
            if cuda:
                peak = torch.cuda.max_memory_allocated(self.device) / 2**20
                entry["peak_device_mib"] = max(entry.get("peak_device_mib", 0.0), peak)

    def timings(self) -> dict[str, float]:
        """Flat ``<stage>_s``, ``<stage>_rss_mib`` and ``<stage>_device_mib`` values for the store."""
        flat: dict[str, float] = {}
        for name, entry in self.stages.items():
            key = name.replace("-", "_").replace(" ", "_")
            flat[f"{key}_s"] = entry["seconds"]
            flat[f"{key}_rss_mib"] = entry["peak_rss_mib"]
            if "peak_device_mib" in entry:
                flat[f"{key}_device_mib"] = entry["peak_device_mib"]
        return flat
