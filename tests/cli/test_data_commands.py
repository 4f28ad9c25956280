"""`bench-suite data info|check|fetch` through the CLI."""

from typer.testing import CliRunner

from bench_suite.cli.app import app


def invoke(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_info_says_where_it_looked(tmp_path):
    code, output = invoke("data", "info", "drive", "--data-root", str(tmp_path))
    assert code == 0
    assert f"looked in {tmp_path / 'DRIVE'}: absent" in output and "register" in output


def test_check_missing_dataset_is_one_error_and_non_zero(tmp_path):
    code, output = invoke("data", "check", "em", "--data-root", str(tmp_path))
    assert code != 0 and "Traceback" not in output
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1


def test_fetch_registration_only_dataset_explains_how_to_get_it(tmp_path):
    code, output = invoke("data", "fetch", "drive", "--data-root", str(tmp_path))
    assert code != 0 and "cannot be downloaded automatically" in output and "Traceback" not in output


def test_unknown_dataset_suggests_a_name(tmp_path):
    code, output = invoke("data", "check", "set13", "--data-root", str(tmp_path))
    assert code != 0 and "did you mean 'set12'" in output


def test_check_passes_on_real_data(shared_data):
    for name in ("em", "set12", "hippocampus"):
        code, output = invoke("data", "check", name, "--data-root", str(shared_data))
        assert code == 0, output
        assert f"{name}: OK" in output
