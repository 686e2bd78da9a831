"""Command line: ``python -m wsnotebook {demo,serve,send,record,replay,bench}`` (also the
``wsnotebook`` script).

* ``demo``  — serve + synthetic agent events + a client, with a one-line live summary (events,
  ev/s, clients, latency p50/p99, reconnects) refreshed in place; ``--duration S`` stops by itself.
* ``serve`` — a drop-in for the seed-origin server (``--port 4000 --db events.db``); runs until
  Ctrl-C / SIGTERM.
* ``send``  — post one event (JSON on stdin, or built from flags) and print the stored event;
  exits 1 with the server's error on a 4xx/5xx reply, 3 when the server cannot be reached.
* ``record`` — capture a stream into a crash-safe Parquet recording (``--out``);
  ``replay`` — send a recording (default: the shipped session) to ``--to`` at ``--speed``.
* ``bench`` — run ``benchmarks/run_all.py`` (``--quick`` and any further arguments pass through).

Exit codes: 0 success, 1 the server refused (HTTP error), 2 usage error, 3 connection failure,
130 interrupted (``demo`` stopped by Ctrl-C before its ``--duration``; for ``serve``, Ctrl-C and
SIGTERM are the normal way to stop, a clean stop exits 0).

Layout: ``parser`` (the parser and ``main``, the dispatch) · ``demo`` · ``serve`` · ``send`` ·
``bench`` (one module per command) · ``summary`` (the demo's pure summary line) · ``common``
(exit codes, the stop signal).
``wsnotebook.cli:main`` is the console-script entry point.
"""

from __future__ import annotations

from .bench import cmd_bench, find_bench_script
from .common import (
    EXIT_CONNECTION,
    EXIT_HTTP_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from .demo import cmd_demo
from .parser import build_parser, main
from .send import build_event, cmd_send
from .serve import cmd_serve
from .summary import summary_line

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_HTTP_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_event",
    "build_parser",
    "cmd_bench",
    "cmd_demo",
    "cmd_send",
    "cmd_serve",
    "find_bench_script",
    "main",
    "summary_line",
]
