"""Every tensor the simulation, encoders, trainers and calibration create is placed on purpose.

A static check: each call of a torch tensor factory in those rooms either passes ``device=`` or carries
a ``# device:`` comment on its line (or the one above) saying where the tensor lives and why (e.g. drawn
on the CPU so every device sees the same random numbers, or a module buffer that ``.to(device)`` moves).
``*_like`` factories follow their argument and need neither.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bench_suite"
CHECKED = [*PACKAGE.glob("snn/*.py"), *PACKAGE.glob("trainers/*.py"), *PACKAGE.glob("neurons/*.py"),
           *PACKAGE.glob("norms/*.py"), PACKAGE / "core" / "neuron.py", PACKAGE / "experiment" / "evaluation.py",
           PACKAGE / "experiment" / "cells.py"]
FACTORIES = {"zeros", "ones", "full", "empty", "rand", "randn", "randint", "randperm", "tensor", "arange",
             "linspace", "eye", "as_tensor", "from_numpy", "Generator"}


def unplaced(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in FACTORIES or getattr(node.func.value, "id", "") != "torch":
            continue
        if any(keyword.arg == "device" for keyword in node.keywords):
            continue
        span = lines[max(0, node.lineno - 2) : (node.end_lineno or node.lineno)]  # the line above too
        if any("# device:" in line for line in span):
            continue
        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_no_tensor_is_created_without_a_device_or_a_reason():
    assert [line for path in CHECKED for line in unplaced(path)] == []


def test_the_check_sees_an_unplaced_tensor(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import torch\nx = torch.zeros(3)\ny = torch.ones(2, device=d)\nz = torch.rand(1)  # device: why\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        assert unplaced(sample) == ["sample.py:2: x = torch.zeros(3)"]
    finally:
        PACKAGE = saved
