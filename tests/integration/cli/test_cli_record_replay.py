"""``wsnotebook record`` and ``wsnotebook replay`` end to end on loopback, and their one-line
errors: not a recording, a truncated one, an unwritable or existing ``--out`` (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wsnotebook.cli import EXIT_OK, EXIT_USAGE, main
from wsnotebook.client import connect
from wsnotebook.demo import start_demo
from wsnotebook.recording import read_recording, session_path
from wsnotebook.server import Server

pytestmark = pytest.mark.timeout(60)


def test_record_then_replay_from_the_command_line(
    tmp_path: Path, server_factory: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    source = server_factory()
    producer = start_demo(source, rate=2000, batch=20, seed=5, max_events=1500)
    out = tmp_path / "cli.parquet"
    try:
        code = main(
            [
                "record",
                source.url,
                "--out",
                str(out),
                "--since",
                "0",
                "--max-events",
                "1000",
                "--flush-interval",
                "0.1",
                "--quiet",
            ]
        )
    finally:
        producer.stop()
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.startswith("recorded ") and str(out) in captured.out
    assert len(read_recording(out)) >= 1000

    target = server_factory()
    client = connect(target.url, since=0)
    try:
        code = main(["replay", str(out), "--to", target.http_url, "--speed", "max"])
        captured = capsys.readouterr()
        assert code == EXIT_OK, captured.err
        assert captured.out.startswith(f"replayed {len(read_recording(out))} of ")
        assert client.wait_for(len(read_recording(out)), timeout=30)
    finally:
        client.close()


def test_replay_without_a_file_sends_the_shipped_session(
    server_factory: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    target = server_factory()
    n = len(read_recording(session_path()))
    assert main(["replay", "--to", target.url, "--speed", "max"]) == EXIT_OK
    assert f"replayed {n} of {n} events" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_2(
    tmp_path: Path, server_factory: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    target = server_factory()
    notes = tmp_path / "notes.txt"
    notes.write_text("not parquet")
    cut = tmp_path / "cut.parquet"
    data = session_path().read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    taken = tmp_path / "taken"
    taken.write_text("x")
    cases: list[tuple[list[str], str]] = [
        (["replay", str(notes), "--to", target.url], "not a recording"),
        (["replay", str(cut), "--to", target.url], "truncated"),
        (["replay", str(tmp_path / "nope"), "--to", target.url], "no such file"),
        (["record", target.url, "--out", str(taken)], "exists"),
        (["record", target.url, "--out", "/proc/wsnotebook/x.parquet"], "cannot record"),
        (["replay", "--to", target.url, "--speed", "fast"], "speed"),
    ]
    for argv, words in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == EXIT_USAGE, (argv, err)
        assert len(err.splitlines()) == 1 and words in err.lower(), (argv, err)
        assert err.startswith(f"wsnotebook {argv[0]}: ")


def test_record_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--flush-interval", "--since", "--max-events", "--token"):
        assert option in text
