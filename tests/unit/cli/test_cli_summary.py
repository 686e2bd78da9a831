"""The demo's one-line summary (``wsnotebook.cli.summary``): pure formatting, no I/O."""

from __future__ import annotations

from wsnotebook import cli as _cli


def test_summary_line_shows_every_figure() -> None:
    line = _cli.summary_line(
        events=12345, rate=49.9, clients=2, p50=1.234, p99=250.0, reconnects=1, sent=12400,
        elapsed=3.0,
    )  # fmt: skip
    assert "12,345" in line and "49.9 ev/s" in line and "clients   2" in line
    assert "p50   1.2ms" in line and "p99   250ms" in line and "reconnects 1" in line
    assert "\n" not in line
    empty = _cli.summary_line(
        events=0, rate=0, clients=0, p50=None, p99=float("nan"), reconnects=0, sent=0, elapsed=0
    )
    assert "p50       - p99       -" in empty
