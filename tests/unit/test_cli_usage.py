"""Mistyped command lines get click's usage message and exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from tunesmith.cli.main import main


@pytest.mark.parametrize(
    "argv, says",
    [
        (["run", "x.yaml", "--new"], "No such option: --new"),
        (["frobnicate"], "No such command"),
        (["run"], "Missing argument"),
    ],
)
def test_usage_errors_print_a_message(capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
