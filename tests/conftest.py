import logging
import os
from pathlib import Path

import pytest
import torch

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(os.environ.get("BENCH_SUITE_SHARED_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set BENCH_SUITE_SHARED_DATA)")
    return SHARED_DATA.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # every test that reads ../shared/data is a real-data test: `-m realdata` / `-m "not realdata"`
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


LATEX_DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\usepackage[margin=1cm,landscape]{geometry}
\begin{document}
%s
\end{document}
"""


@pytest.fixture
def compile_latex(tmp_path_factory):
    """``compile_latex(text)`` runs a real pdflatex on ``text`` inside a minimal document (booktabs only)
    and fails with the log's first error. CI installs pdflatex (.ci/run); elsewhere a missing one skips."""
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing on CI; .ci/run installs texlive-latex-base and -recommended")
        pytest.skip("pdflatex is not installed (Debian: texlive-latex-base texlive-latex-recommended)")
    counter = iter(range(10_000))

    def run(text: str) -> None:
        folder = tmp_path_factory.mktemp(f"latex{next(counter)}")
        (folder / "table.tex").write_text(LATEX_DOCUMENT % text, encoding="utf-8")
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "table.tex"],
                                cwd=folder, capture_output=True, text=True, timeout=120)
        log = (folder / "table.log").read_text(errors="replace") if (folder / "table.log").exists() else ""
        errors = [line for line in log.splitlines() if line.startswith("!")]
        assert result.returncode == 0 and not errors, f"pdflatex failed: {errors[:3]}\n{text[:2000]}"
        assert (folder / "table.pdf").stat().st_size > 1000

    return run


EXAMPLE_PACKAGE = Path(__file__).parents[1] / "plugins" / "bench-suite-example"


@pytest.fixture
def example_package(monkeypatch):
    """The example plugin package's modules, imported from its source folder (installed or not)."""
    import importlib

    monkeypatch.syspath_prepend(str(EXAMPLE_PACKAGE))
    importlib.import_module("bench_suite_example.neurons")
    return importlib.import_module("bench_suite_example")
