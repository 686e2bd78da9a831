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


def serve_kwargs(
    monkeypatch: pytest.MonkeyPatch, *argv: str, memory: bool = True
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_serve(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr("wsnotebook.server.serve", fake_serve)
    # in memory unless a store is given (no events.db written by a test)
    where = ["--memory"] if memory and not {"--db", "--store", "--memory"} & set(argv) else []
    args = build_parser().parse_args(["serve", *where, *argv])
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


@pytest.mark.parametrize(
    ("argv", "store"),
    [((), "sqlite:///events.db"), (("--db", "x.db"), "sqlite:///x.db"),
     (("--memory",), "memory"), (("--store", "memory"), "memory")],
)  # fmt: skip
def test_the_store_comes_from_one_of_db_memory_store(
    monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], store: str
) -> None:
    assert serve_kwargs(monkeypatch, *argv, memory=False)["store"] == store


@pytest.mark.parametrize(
    "argv", [("--memory", "--db", "x.db"), ("--store", "memory", "--db", "x.db"),
             ("--store", "memory", "--memory")],
)  # fmt: skip
def test_two_stores_are_a_usage_error_not_one_silently_ignored(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve", *argv])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "extra"), [("serve", "--bogus"), ("send", "--nope")])
def test_an_unknown_option_shows_the_commands_usage(
    command: str, extra: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from wsnotebook.cli import main

    with pytest.raises(SystemExit) as info:
        main([command, extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"usage: wsnotebook {command} " in err and f"unrecognized arguments: {extra}" in err
