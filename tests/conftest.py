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
