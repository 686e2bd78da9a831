"""The CLI's option types: the shared ``wsnotebook._validate.arg_*`` rules (the ``%ws`` magics
use the same ones; tests/unit/test_magics.py checks both refuse the same values alike)."""

from __future__ import annotations

import pytest

from wsnotebook import cli as _cli


def parse_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """argparse's message for ``argv`` (it exits 2 on a usage error)."""
    with pytest.raises(SystemExit) as info:
        _cli.build_parser().parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-3", "nope"])
@pytest.mark.parametrize("option", ["--rate", "--duration"])
def test_demo_rate_and_duration_must_be_finite_and_positive(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = parse_error(["demo", option, value], capsys)
    expected = "not a number" if value == "nope" else "must be a finite number > 0"
    assert f"argument {option}: {expected}" in err


@pytest.mark.parametrize("command", ["demo", "serve"])
@pytest.mark.parametrize("value", ["70000", "-1", "x"])
def test_ports_out_of_range_are_usage_errors(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = parse_error([command, "--port", value], capsys)
    assert "port must be in 0..65535" in err or "not a port number" in err


def test_good_values_parse() -> None:
    ns = _cli.build_parser().parse_args(
        ["demo", "--rate", "2.5", "--duration", "1e3", "--refresh", "0.01", "--port", "0"]
    )
    assert (ns.rate, ns.duration, ns.refresh, ns.port) == (2.5, 1000.0, 0.01, 0)
