"""One error tree: every problem a user can fix is an AssuranceError, and the command line prints it as one line."""

from __future__ import annotations

import inspect

import pytest

from assurance.cli.main import main
from assurance.domain import errors
from assurance.domain.errors import AssuranceError, PolicyError, describe_error, one_line


def test_every_product_error_is_an_assurance_error_and_the_tree_documents_it():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert len(classes) > 5
    for cls in classes:
        assert issubclass(cls, AssuranceError)
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} is missing from the tree in the docstring"
    assert issubclass(PolicyError, ValueError)  # pydantic validators may raise it


def test_describe_error_is_the_type_and_the_first_line_cut_short():
    assert describe_error(KeyError()) == "KeyError"
    assert describe_error(ValueError("bad value\nsecond line")) == "ValueError: bad value"
    assert describe_error(RuntimeError("x" * 500)) == "RuntimeError: " + "x" * 200
    assert describe_error(RuntimeError("x" * 500), limit=300) == "RuntimeError: " + "x" * 300


def test_one_line_keeps_the_whole_message_on_one_line():
    assert one_line(PolicyError("policy p.yaml:\n  thresholds.drift: unknown key\n")) == (
        "policy p.yaml: thresholds.drift: unknown key"
    )


def test_cli_prints_a_bad_setting_as_one_line_and_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("ASSURANCE_SENSOR_MAX_RUNS", "many")
    assert main(["export", "m", "1", "--evidence", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ASSURANCE_SENSOR_MAX_RUNS='many' is not an integer")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", [["status"], ["run", "--model", "m"]])
def test_cli_prints_a_policy_error_as_one_line_and_exits_2(command, capsys, tmp_path):
    missing = tmp_path / "absent.yaml"
    code = main([*command, "--policy", str(missing), "--evidence", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: policy file not found") and str(missing) in err


def test_cli_prints_an_input_error_as_one_line_and_exits_2(capsys, tmp_path):
    code = main(["accept", "f1", "--reason", " ", "--expires", "2999-01-01", "--evidence", str(tmp_path)])
    assert code == 2 and capsys.readouterr().err.startswith("error: a risk acceptance needs a reason")
