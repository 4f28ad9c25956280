"""Optional and undeclared dependencies, checked where they are first needed with one clear sentence.

SpikingJelly is not a declared dependency: its metadata asks for torchvision and torchaudio, which pull
a CUDA build of torch (or fail to import beside the CPU wheel), so it is installed with ``--no-deps``.
Everything that simulates a spiking network needs it; ``--help``, ``data``, ``report`` and
``list suites`` do not.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType

from packaging.version import Version

from bench_suite.core.errors import BenchSuiteError

SPIKINGJELLY_RANGE = (Version("2.0.0"), Version("3"))
SPIKINGJELLY_INSTALL = "pip install --no-deps spikingjelly==2.0.0"


class MissingDependency(BenchSuiteError, ImportError):
    """A package bench-suite needs is absent or of a version it does not work with."""


def spikingjelly_version() -> str | None:
    try:
        return importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_spikingjelly() -> None:
    """Raise :class:`MissingDependency` naming the install command unless SpikingJelly 2.x is importable."""
    version = spikingjelly_version()
    if version is None:
        raise MissingDependency(
            f"SpikingJelly is not installed, and every spiking network needs it; install it with "
            f"`{SPIKINGJELLY_INSTALL}` (without its dependencies, which would pull a CUDA build of torch)"
        )
    low, high = SPIKINGJELLY_RANGE
    if not low <= Version(version) < high:
        raise MissingDependency(
            f"SpikingJelly {version} is installed but bench-suite needs {low} up to (not including) {high}; "
            f"install the supported version with `{SPIKINGJELLY_INSTALL}`"
        )
    try:
        importlib.import_module("spikingjelly.activation_based.neuron")
    except ImportError as error:
        raise MissingDependency(
            f"SpikingJelly {version} is installed but cannot be imported ({type(error).__name__}: {error}); "
            f"reinstall it with `{SPIKINGJELLY_INSTALL}`"
        ) from error


def spikingjelly(module: str) -> ModuleType:
    """``spikingjelly.<module>``, after :func:`require_spikingjelly`."""
    require_spikingjelly()
    return importlib.import_module(f"spikingjelly.{module}")
