"""``wsnotebook send`` usage errors, in process: everything checkable before the request is a
usage error (exit 2) with a one-line message, and no request is made."""

from __future__ import annotations

import argparse
import io
import sys

import pytest

from wsnotebook import cli as _cli
from wsnotebook.errors import ConfigError, WsnError


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ((), "", "no event"),
        ((), "{not json", "Expecting property name"),
        (("--type", "Stop"), "", "missing --source-app, --session-id"),
        (
            ("--source-app", "a", "--session-id", "s", "--type", "T", "--payload", "[1"),
            "",
            "--payload is not valid JSON",
        ),
        (
            ("--source-app", "a", "--session-id", "s", "--type", "T", "--payload", "[1]"),
            "",
            "--payload must be a JSON object, got list",
        ),
        ((), "NaN", "not JSON compliant"),  # would be posted as invalid JSON
        (("--url", "http://127.0.0.1:abc"), '{"a": 1}', "Port could not be cast"),
        (("--url", "http://127.0.0.1:99999"), '{"a": 1}', "Port out of range"),
        (("--url", "http://" + "a" * 70 + ".invalid"), '{"a": 1}', "label"),
    ],
)
def test_send_usage_errors_exit_2(args: tuple[str, ...], stdin: str, message: str) -> None:
    argv = ["send", "--url", "http://127.0.0.1:9", *args]
    ns = _cli.build_parser().parse_args(argv)
    err = io.StringIO()
    old = sys.stderr
    sys.stderr = err
    try:
        code = _cli.cmd_send(ns, out=io.StringIO(), stdin=io.StringIO(stdin))
    finally:
        sys.stderr = old
    assert code == 2
    assert message in err.getvalue()


def test_build_event_refuses_missing_flags_with_a_wsn_error() -> None:
    ns = argparse.Namespace(
        type="Stop", source_app=None, session_id="s", payload=None, summary=None, model_name=None
    )
    with pytest.raises(ConfigError, match="missing --source-app") as info:
        _cli.build_event(ns, io.StringIO())
    assert isinstance(info.value, WsnError) and isinstance(info.value, ValueError)
