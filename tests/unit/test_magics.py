"""The %ws magics through a real IPython InteractiveShell (no sockets: see
tests/integration/test_magics_live.py for serve/connect/demo)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import wsnotebook.widget as W
from wsnotebook import cli
from wsnotebook.frame import EventFrame

pytestmark = pytest.mark.timeout(60)


def run_cell_error(ip: InteractiveShell, source: str, capsys: pytest.CaptureFixture) -> str:
    """Run a cell; return what it printed on stderr (where IPython shows a UsageError)."""
    result = ip.run_cell(source)
    err = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    return err.err + err.out


def test_bare_ws_prints_help(shell: InteractiveShell, capsys: pytest.CaptureFixture):
    assert shell.run_line_magic("ws", "") is None
    out = capsys.readouterr().out
    for command in ("serve", "connect", "monitor", "demo", "stats", "stop"):
        assert f"%ws {command}" in out


def test_loading_the_extension_twice_is_harmless(shell: InteractiveShell):
    before = shell.magics_manager.registry["WsMagics"]
    shell.run_line_magic("load_ext", "wsnotebook")
    shell.run_line_magic("reload_ext", "wsnotebook")
    assert "ws" in shell.magics_manager.magics["line"]
    assert isinstance(shell.magics_manager.registry["WsMagics"], type(before))


def test_unknown_command_prints_a_usage_line_not_a_traceback(
    shell: InteractiveShell, capsys: pytest.CaptureFixture
):
    text = run_cell_error(shell, "%ws frobnicate", capsys)
    assert "unknown command 'frobnicate'" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("serve --port nope", "not a port number"),
        ("serve --port 70000", "port must be in 0..65535"),
        ("serve --bogus", "unrecognized arguments: --bogus"),
        ("demo --rate -3", "must be a finite number > 0"),
        ("monitor --window 2h", "invalid choice"),
        ("stop everything", "invalid choice"),
        ("connect 'unclosed", "No closing quotation"),
    ],
)
def test_wrong_arguments_print_a_clear_usage_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture, line: str, expected: str
):
    text = run_cell_error(shell, f"%ws {line}", capsys)
    assert expected in text
    assert "Traceback" not in text
    if not line.startswith("connect"):
        assert "usage: %ws" in text


def test_monitor_of_a_namespace_frame_returns_the_widget(shell: InteractiveShell):
    frame = EventFrame()
    frame.extend(
        [
            {
                "id": 1,
                "source_app": "a",
                "session_id": "s",
                "hook_event_type": "Stop",
                "payload": {},
                "timestamp": 1.7e12,
            },
        ]
    )
    shell.user_ns["my_frame"] = frame
    mon = shell.run_line_magic("ws", "monitor my_frame --window 5m --by-type")
    assert isinstance(mon, W.Monitor)
    assert shell.user_ns["ws_monitor"] is mon
    assert mon.window == "5m" and mon.split_by_type is True
    assert mon.running
    # re-running the cell replaces the tick instead of adding one
    again = shell.run_line_magic("ws", "monitor my_frame")
    assert not mon.running and again.running
    assert W.running_monitors() == [again]


def test_monitor_without_target_or_unknown_name_is_a_usage_error(shell: InteractiveShell):
    with pytest.raises(UsageError, match="nothing to monitor"):
        shell.run_line_magic("ws", "monitor")
    with pytest.raises(UsageError, match="no variable 'missing'"):
        shell.run_line_magic("ws", "monitor missing")
    shell.user_ns["not_a_target"] = 42
    with pytest.raises(UsageError, match="Client, Server or EventFrame"):
        shell.run_line_magic("ws", "monitor not_a_target")


def test_demo_and_connect_without_a_server_say_what_to_do(shell: InteractiveShell):
    with pytest.raises(UsageError, match="run %ws serve first"):
        shell.run_line_magic("ws", "demo")
    with pytest.raises(UsageError, match="give a URL, or run %ws serve first"):
        shell.run_line_magic("ws", "connect")


def test_stats_with_nothing_started(shell: InteractiveShell, capsys: pytest.CaptureFixture):
    stats = shell.run_line_magic("ws", "stats")
    assert stats == {} and "nothing started" in str(stats)


def test_stats_as_a_cells_result_is_shown_once_as_lines(
    shell: InteractiveShell, capsys: pytest.CaptureFixture
) -> None:
    shell.user_ns["ws_server"] = SimpleNamespace(metrics=lambda: {"events_in": 3, "rate": 1.5})
    capsys.readouterr()
    shell.run_cell("%ws stats")
    out = capsys.readouterr().out
    assert out.count("events_in") == 1 and "ws_server: events_in=3, rate=1.5" in out
    assert "{" not in out  # not the dict's repr
    stats = shell.run_line_magic("ws", "stats")
    assert stats == {"ws_server": {"events_in": 3, "rate": 1.5}}


def test_stop_and_unload_stop_the_monitors_the_extension_started(shell: InteractiveShell):
    shell.user_ns["f1"] = EventFrame()
    shell.user_ns["f2"] = EventFrame()
    m1 = shell.run_line_magic("ws", "monitor f1")
    assert shell.run_line_magic("ws", "stop") == 1
    assert not m1.running
    m2 = shell.run_line_magic("ws", "monitor f2")
    shell.run_line_magic("unload_ext", "wsnotebook")
    assert not m2.running
    assert "ws" not in shell.magics_manager.magics["line"]
    shell.run_line_magic("load_ext", "wsnotebook")  # the fixture unloads again


@pytest.mark.parametrize(
    ("magic", "argv"),
    [
        ("demo --rate inf", ["demo", "--rate", "inf"]),  # the magics used to accept inf
        ("demo --rate nan", ["demo", "--rate", "nan"]),
        ("demo --rate 0", ["demo", "--rate", "0"]),
        ("serve --port 70000", ["serve", "--port", "70000"]),
        ("serve --port inf", ["serve", "--port", "inf"]),
    ],
)
def test_magics_and_cli_refuse_the_same_values_with_the_same_message(
    shell: InteractiveShell, capsys: pytest.CaptureFixture, magic: str, argv: list[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv)
    # "wsnotebook demo: error: argument --rate: <reason>"
    m = re.search(r"error: (argument --\w+: .+)$", capsys.readouterr().err.strip())
    assert m, "the CLI refused without naming the option"
    reason = m.group(1)
    assert re.search(r": (must be|port must be|not a port number)", reason), reason
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("ws", magic)
    assert reason in str(info.value)


def test_connect_with_words_instead_of_a_url_says_so(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="one URL expected, got 3 words"):
        shell.run_line_magic("ws", "connect not a url")
    assert "ws_client" not in shell.user_ns
