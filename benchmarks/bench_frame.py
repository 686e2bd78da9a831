"""EventFrame benchmark: append rates, ``.df`` snapshot time and RSS per retained event.

Run: ``.venv/bin/python -m benchmarks.bench_frame [--quick]``.  Prints a table and writes
``benchmarks/results/bench_frame.json``.  Each figure is the median of >= 3 repetitions, beside a
naive baseline measured in the same run:

* single append vs ``pd.concat`` per event (quadratic, so on a small N only);
* batched ``extend`` (batches of 1000) vs keeping a list of dicts and building a DataFrame every
  1000 rows;
* ``.df`` vs ``pd.DataFrame(list_of_dicts)``;
* RSS per retained event (each measured in a fresh subprocess) vs retaining the decoded dicts.

The default frame compresses full chunks (``compress="auto"``: zstd with pyarrow, else zlib);
``extend`` and RSS are also measured with ``compress=None`` and ``"zlib"``, and the ``.df``
figures beside ``snapshot(payload="json")``.
Events are realistic agent-hook events (~420 bytes as POSTed, ~500 with ``id`` and the two receive
stamps), each with a unique command, decoded fresh from JSON per batch as a client receives them;
decoding is not timed.  ``--clock cpu`` (default) times this process's CPU, so other jobs on the
machine do not distort figures; ``--clock wall`` uses wall time.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from wsnotebook.frame import EventFrame

from ._common import median_of, print_table, rss_bytes, set_clock, timed, write_results

BATCH = 1000
APPS = ("cc-hook-obvs", "webapp", "pipeline")
KINDS = ("PreToolUse", "PostToolUse", "Notification", "Stop", "UserPromptSubmit", "SubagentStop")
TOOLS = ("Bash", "Read", "Edit", "Grep", "Write")
MODELS = ("claude-sonnet-4", "claude-opus-4-1", "claude-haiku-3-5")
T0 = 1_760_000_000_000.0


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def make_pool(k: int = BATCH, seed: int = 7) -> bytes:
    """JSON array of ``k`` distinct ~400-byte hook events (ids patched per batch later)."""
    rng = random.Random(seed)
    sessions = [(rng.choice(APPS), _uuid(rng)) for _ in range(8)]
    events = []
    for i in range(k):
        app, sid = rng.choice(sessions)
        kind = rng.choice(KINDS)
        tool = rng.choice(TOOLS)
        payload: dict[str, Any] = {
            "session_id": sid,
            "transcript_path": f"~/.claude/{sid[:8]}.jsonl",
            "cwd": "/home/dev/app",
            "hook_event_name": kind,
            "tool_name": tool,
            "tool_input": {"command": "pytest -q tests/test_0000000000.py"},  # made unique later
        }
        event: dict[str, Any] = {
            "id": i,
            "source_app": app,
            "session_id": sid,
            "hook_event_type": kind,
            "payload": payload,
            "timestamp": T0 + i,
            "model_name": rng.choice(MODELS),
            "server_received": T0 + i + 1.5,
            "client_received": T0 + i + 2.25,
        }
        if rng.random() < 0.25:
            event["summary"] = f"Running {tool}"
        events.append(event)
    return orjson.dumps(events)


def batches(pool: bytes, n: int, *, start_id: int = 1) -> Iterator[list[dict[str, Any]]]:
    """``n`` events in batches of ``BATCH``, freshly decoded, with unique increasing ids and a
    unique random command per event (so compression sees realistic, non-repeating text)."""
    rng = random.Random(start_id)
    ident = start_id
    left = n
    while left > 0:
        batch = orjson.loads(pool)[: min(BATCH, left)]
        for e in batch:
            e["id"] = ident
            e["payload"]["tool_input"]["command"] = (
                f"pytest -q tests/test_{rng.getrandbits(40):010x}.py"
            )
            ident += 1
        left -= len(batch)
        yield batch


def mean_event_bytes(pool: bytes) -> float:
    events = orjson.loads(pool)
    return sum(len(orjson.dumps(e)) for e in events) / len(events)


# --------------------------------------------------------------------------- measurements


def append_single(pool: bytes, n: int) -> float:
    frame = EventFrame(max_rows=max(n, 1))
    spent = 0.0
    for batch in batches(pool, n):
        append = frame.append
        spent += timed(lambda b=batch, a=append: [a(e) for e in b])  # type: ignore[misc]
    assert len(frame) == n
    return n / spent


def concat_per_event(pool: bytes, n: int) -> float:
    df = pd.DataFrame()
    spent = 0.0
    for batch in batches(pool, n):

        def run(b: list[dict[str, Any]] = batch) -> None:
            nonlocal df
            for e in b:
                df = pd.concat([df, pd.DataFrame([e])], ignore_index=True)

        spent += timed(run)
    assert len(df) == n
    return n / spent


def extend_batched(pool: bytes, n: int, compress: str | None = "auto") -> tuple[float, EventFrame]:
    frame = EventFrame(max_rows=max(n, 1), compress=compress)
    spent = 0.0
    for batch in batches(pool, n):
        spent += timed(lambda b=batch: frame.extend(b))  # type: ignore[misc]
    assert len(frame) == n
    return n / spent, frame


def dicts_then_dataframe(pool: bytes, n: int) -> tuple[float, list[dict[str, Any]]]:
    """Baseline: keep the dicts, build a DataFrame of every 1000 new rows."""
    rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    spent = 0.0
    for batch in batches(pool, n):

        def run(b: list[dict[str, Any]] = batch) -> None:
            rows.extend(b)
            frames.append(pd.DataFrame(b))

        spent += timed(run)
    return n / spent, rows


def rss_child(kind: str, n: int) -> None:
    """Subprocess body: retain ``n`` events in ``kind`` and print RSS bytes per event."""
    pool = make_pool()
    keep: Any
    if kind.startswith("frame"):
        name = kind.partition(":")[2] or "auto"
        keep = EventFrame(max_rows=n, compress=None if name == "none" else name)
        keep.extend(next(batches(pool, 1, start_id=0)))  # import codecs before measuring
        keep.clear()
        gc.collect()
        before = rss_bytes()
        for batch in batches(pool, n):
            keep.extend(batch)
        estimate = keep.stats()["memory_bytes"] / n
    else:
        keep = []
        gc.collect()
        before = rss_bytes()
        for batch in batches(pool, n):
            keep.extend(batch)
        estimate = 0.0
    gc.collect()
    after = rss_bytes()
    print(json.dumps({"per_event": (after - before) / n, "estimate": estimate}))


def rss_per_event(kind: str, n: int) -> tuple[float, float]:
    """(RSS bytes per retained event, the frame's own estimate) measured in a fresh subprocess.
    ``kind``: ``"frame"`` (default options), ``"frame:<codec>"`` (``none``/``zlib``/``zstd``/
    ``lz4``) or ``"dicts"`` (a list of the decoded dicts, the naive baseline)."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_frame", "--rss-child", kind, str(n)],
        cwd=str(Path(__file__).resolve().parent.parent),
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["per_event"]), float(data["estimate"])


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k events instead of 1M")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (>= 3)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--rss-child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return 0
    set_clock(args.clock)
    quick = args.quick
    reps = max(3, args.reps)
    n_big = 100_000 if quick else 1_000_000
    n_single = 20_000 if quick else 100_000
    n_concat = 300 if quick else 1_000
    pool = make_pool()
    first = next(batches(pool, BATCH))
    size = sum(len(orjson.dumps(e)) for e in first) / len(first)
    print(
        f"events: ~{size:.0f} bytes of JSON each (with id and receive stamps); "
        f"batches of {BATCH}; medians of {reps}; {args.clock} clock"
    )
    rows: list[dict[str, Any]] = []

    def row(metric: str, n: int, ours: float, base: float, baseline: str, unit: str) -> None:
        better = ours / base if unit == "ev/s" else base / ours
        rows.append(
            {
                "metric": metric,
                "n": n,
                "wsnotebook": ours,
                "baseline": base,
                "unit": unit,
                "x better": better,
                "baseline is": baseline,
            }
        )
        print(f"  {metric}: {ours:,.3f} vs {base:,.3f} {unit}", flush=True)

    single, _ = median_of(lambda: append_single(pool, n_single), reps)
    concat, _ = median_of(lambda: concat_per_event(pool, n_concat), reps)
    row(
        "append, one event per call",
        n_single,
        single,
        concat,
        f"pd.concat per event (n={n_concat})",
        "ev/s",
    )

    base_rates = []
    dicts: list[dict[str, Any]] = []
    for _ in range(reps):
        dicts = []
        gc.collect()
        rate, dicts = dicts_then_dataframe(pool, n_big)
        base_rates.append(rate)
    base_extend = _median(base_rates)
    raw: dict[str, Any] = {"dicts_then_dataframe": base_rates}
    frame: EventFrame | None = None
    for codec in ("auto", None, "zlib"):
        rates = []
        for _ in range(reps):
            frame = None
            gc.collect()
            rate, frame = extend_batched(pool, n_big, codec)
            rates.append(rate)
        raw[f"extend_{codec}"] = rates
        label = "extend, batches of 1000" + ("" if codec == "auto" else f", compress={codec}")
        row(label, n_big, _median(rates), base_extend, "list of dicts + DataFrame per 1000", "ev/s")
        if codec == "auto":
            plain_frame = frame  # the default frame
    del frame
    for n in sorted({min(100_000, n_big), n_big}):
        sub = plain_frame if n == n_big else _prefix_frame(pool, n)
        sub_dicts = dicts[:n]
        base, _ = median_of(lambda d=sub_dicts: timed(lambda: pd.DataFrame(d), collect=True), reps)  # type: ignore[misc]
        snap, _ = median_of(lambda s=sub: timed(lambda: s.df, collect=True), reps)  # type: ignore[misc]
        row(".df snapshot (payload dicts)", n, snap, base, "pd.DataFrame(list of dicts)", "s")
        js, _ = median_of(
            lambda s=sub: timed(lambda: s.snapshot(payload="json"), collect=True), reps
        )  # type: ignore[misc]
        row('.snapshot(payload="json")', n, js, base, "pd.DataFrame(list of dicts)", "s")
    del dicts, plain_frame, sub, sub_dicts
    gc.collect()

    base_rss = [rss_per_event("dicts", n_big) for _ in range(reps)]
    b = _median([v for v, _ in base_rss])
    rss: dict[str, Any] = {"dicts": base_rss}
    for kind in ("frame", "frame:none", "frame:zlib"):
        samples = [rss_per_event(kind, n_big) for _ in range(reps)]
        rss[kind] = samples
        label = "RSS per retained event" + (f", compress={kind[6:]}" if ":" in kind else "")
        row(label, n_big, _median([v for v, _ in samples]), b, "list of decoded dicts", "B/event")

    print()
    print_table(rows)
    by_metric = {(r["metric"], r["n"]): r["wsnotebook"] for r in rows}
    targets = {
        "extend >= 1e6 ev/s": by_metric[("extend, batches of 1000", n_big)] >= 1e6,
        "RSS <= 200 B/event": by_metric[("RSS per retained event", n_big)] <= 200,
        ".df of 1M < 1 s": None
        if quick
        else by_metric[(".df snapshot (payload dicts)", n_big)] < 1,
    }
    print(f"default codec: {EventFrame().compress}; targets: {targets}")
    write_results(
        "bench_frame",
        {
            "quick": quick,
            "clock": args.clock,
            "event_bytes": size,
            "reps": reps,
            "rows": rows,
            "raw": raw,
            "rss_samples": rss,
            "targets_met": targets,
        },
    )
    return 0


def _prefix_frame(pool: bytes, n: int) -> EventFrame:
    frame = EventFrame(max_rows=n)
    for batch in batches(pool, n):
        frame.extend(batch)
    return frame


if __name__ == "__main__":
    raise SystemExit(main())
