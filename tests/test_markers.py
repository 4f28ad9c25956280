"""The `realdata` marker reaches every test that uses the `shared_data` fixture (tests/conftest.py)."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FILES = ["tests/datasets/test_em.py", "tests/cli/test_data_commands.py", "tests/testing/test_conformance.py"]


def test_realdata_marker_selects_the_shared_data_tests_only():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "realdata", "--collect-only", "-q", "-p", "no:cacheprovider", *FILES],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    selected = {line.strip() for line in result.stdout.splitlines() if "::" in line}
    assert selected == {
        "tests/datasets/test_em.py::test_real_isbi2012",  # marked by hand as well
        "tests/cli/test_data_commands.py::test_check_passes_on_real_data",  # marked by the fixture alone
        # the local download server serves files (and an MSD tar) built from ../shared/data
        "tests/cli/test_data_commands.py::test_fetch_hippocampus_gives_a_folder_that_data_check_accepts",
        "tests/cli/test_data_commands.py::test_fetch_of_a_corrupted_archive_is_one_sentence_and_leaves_no_dataset",
        "tests/cli/test_data_commands.py::test_fetch_takes_the_mirror_from_the_environment",
        "tests/testing/test_conformance.py::test_real_datasets_pass_the_dataset_checks[em]",
        "tests/testing/test_conformance.py::test_real_datasets_pass_the_dataset_checks[hippocampus]",
        "tests/testing/test_conformance.py::test_real_datasets_pass_the_dataset_checks[set12]",
    }
    assert "tests/datasets/test_em.py::test_params_are_validated" not in selected
