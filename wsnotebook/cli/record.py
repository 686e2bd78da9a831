"""``wsnotebook record URL --out FILE.parquet``: capture a stream into a recording.

A reconnecting client (resume, gaps) whose events are written in crash-safe segments (see
``wsnotebook.recording``): ``--out`` becomes a Parquet dataset directory, readable while the
recording runs and after a crash.  Runs until Ctrl-C/SIGTERM, ``--duration`` or
``--max-events``; then flushes and prints one summary line.  An existing or unwritable
``--out``, a bad URL or a refused connection (401/403) prints one line and exits 2; a stream
that never answered (nobody listening, a host not found) says why and exits 3 (the summary line
of an empty recording, exit 0, read as a quiet stream).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .common import EXIT_CONNECTION, EXIT_OK, StopSignal

__all__ = ["cmd_record"]


def cmd_record(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    from ..recording import record

    options: dict[str, Any] = {}
    if args.token:
        options["token"] = args.token
    if args.since is not None:
        options["since"] = args.since
    recorder = record(
        args.url,
        args.out,
        flush_interval=args.flush_interval,
        flush_rows=args.flush_rows,
        max_events=args.max_events,
        **options,
    )
    try:
        if not args.quiet:
            print(
                f"recording {args.url.split('?', 1)[0]} -> {recorder.path} (Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            )
        with StopSignal() as stop:
            step = 0.2
            waited = 0.0
            while recorder.running and not stop.wait(step):
                waited += step
                if args.duration is not None and waited >= args.duration:
                    break
        client = recorder.client
        metrics = client.metrics() if client is not None else {}
    finally:
        recorder.stop()
    if recorder.error is not None:
        raise recorder.error
    s = recorder.stats()
    print(
        f"recorded {s['recorded']} events, {s['gaps']} gap records, {s['segments']} segments "
        f"({s['bytes']} bytes) -> {s['path']}",
        file=out,
    )
    if not metrics.get("connects") and not s["recorded"]:
        why = metrics.get("last_disconnect") or "no connection"
        print(
            f"wsnotebook record: never connected to {args.url.split('?', 1)[0]} ({why})",
            file=sys.stderr,
        )
        return EXIT_CONNECTION
    return EXIT_OK
