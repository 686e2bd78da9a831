"""``wsnotebook replay [FILE] --to URL --speed 10``: send a recording's events to a server.

The original inter-arrival times divided by ``--speed`` (``max``: as fast as the server takes
them).  Without ``FILE`` the shipped demo session is replayed.  Prints one summary line (events,
elapsed vs scheduled time).  A path that is not a recording or is truncated prints one line and
exits 2; a server that refuses the events exits 2 with its reply.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

from .common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, StopSignal

__all__ = ["cmd_replay"]


def cmd_replay(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    from ..recording import replay

    handle = replay(
        args.file,
        args.to,
        speed=args.speed,
        token=args.token,
        jupyter_token=args.jupyter_token,
        retime=args.retime,
        batch=args.batch,
    )
    interrupted = False
    with StopSignal() as stop:
        while not handle.wait(0.1):
            if stop.event.is_set():
                interrupted = True
                handle.stop()
                break
    if handle.error is not None:
        # the replay logged it already ("wsnotebook replay: ..." on stderr, once): raising it
        # here printed it a second time
        if logging.getLogger("wsnotebook").isEnabledFor(logging.ERROR):
            return EXIT_USAGE
        raise handle.error
    s = handle.stats()
    timing = ""
    if s["elapsed_s"] is not None and s["scheduled_s"]:
        timing = (
            f" in {s['elapsed_s']:.3f} s (scheduled {s['scheduled_s']:.3f} s at "
            f"{s['speed']}x, ratio {s['timing_ratio']:.4f})"
        )
    elif s["elapsed_s"] is not None:
        timing = f" in {s['elapsed_s']:.3f} s (speed {s['speed']})"
    print(f"replayed {s['sent']} of {s['total']} events{timing} -> {s['url']}", file=out)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK
