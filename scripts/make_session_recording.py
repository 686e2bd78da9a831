"""Make ``wsnotebook/data/agents_session.parquet``, the recording shipped with the package.

The project's own demo producer (multi-agent hook events) publishes into a local server while
``wsnotebook.recording.record`` captures the stream, exactly as ``python -m wsnotebook record``
would; the segments are then merged into one file with ``compact``.  Run from the repository
root: ``.venv/bin/python scripts/make_session_recording.py [--events 3000] [--rate 150]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import wsnotebook as wsn
from wsnotebook.demo import start_demo
from wsnotebook.recording import compact, read_recording, record, session_path, wait_recorded


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=150.0, help="events/s while capturing")
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--out", type=Path, default=session_path())
    args = ap.parse_args()
    server = wsn.serve(port=0)
    with tempfile.TemporaryDirectory() as tmp:
        rec = record(server.url, Path(tmp) / "capture.parquet", max_events=args.events)
        producer = start_demo(server, rate=args.rate, seed=args.seed, max_events=args.events)
        wait_recorded(rec, args.events, timeout=args.events / args.rate + 60)
        rec.stop()
        producer.stop()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        compact(rec.path, args.out)
    server.stop()
    got = read_recording(args.out)
    print(f"{args.out}: {len(got)} events, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
