"""``wsnotebook serve`` hands its options to ``serve()`` as given (no sockets: serve is faked)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from wsnotebook.cli.parser import build_parser
from wsnotebook.cli.serve import cmd_serve
from wsnotebook.errors import ConfigError


class Stop(Exception):
    pass


def serve_kwargs(monkeypatch: pytest.MonkeyPatch, *argv: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_serve(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr("wsnotebook.server.serve", fake_serve)
    args = build_parser().parse_args(["serve", "--memory", *argv])
    with pytest.raises(Stop):
        cmd_serve(args, io.StringIO())
    return seen


def test_hitl_hosts_and_allowed_hosts_reach_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    kw = serve_kwargs(
        monkeypatch, "--hitl-host", "agents.test", "--hitl-host", "*", "--allowed-host", "nb.test"
    )
    assert kw["hitl_hosts"] == ["agents.test", "*"]
    assert kw["allowed_hosts"] == ["nb.test"]


def test_without_the_flags_serve_keeps_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    kw = serve_kwargs(monkeypatch)
    assert "hitl_hosts" not in kw and "allowed_hosts" not in kw
    assert kw["store"] == "memory"


def test_a_bad_hitl_host_is_refused_by_serve_as_a_config_error() -> None:
    # the real serve() validates before it binds anything
    from wsnotebook import serve

    with pytest.raises(ConfigError):
        serve(port=0, store="memory", hitl_hosts=["not a host/with path"])
