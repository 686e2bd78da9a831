"""Ingest: ``POST /events`` requests/s (keep-alive and ``Connection: close``) and WebSocket
``publish`` events/s, ours beside a floor measured in the same run.

* HTTP floor: a minimal aiohttp ``POST /events`` handler without validation or storage
  (baselines/aiohttp_post.py).  Load: a Node ``http`` process with 16 concurrent request loops
  for ``duration`` seconds; ``close`` opens a TCP connection per request like the seed's hook
  scripts.
* WebSocket floor: the bare ``websockets`` server that only ``orjson.loads`` each ``publish``
  (baselines/ws_broadcast.py).  Load: one Node ``ws`` connection sending ``count`` per-event
  ``publish`` messages as fast as the socket drains; the rate is counted when the server's own
  ``events_in`` reaches the count.  (Our server also streams each event back to that connection,
  which is subscribed: its real semantics.  The connection asks for ``batch=auto``, as our own
  client does by default: with the echo per event the sender fell behind its own stream in some
  runs and was dropped as a slow client, close 1013, and the run now fails at once if so.)

HTTP requests that fail (non-200 answer or connection error) are left out of the rate and
counted: the row's JSON has ``errors`` (failed requests and failed reps per side) and its
measure says ``(ERRORS: ...)`` whenever any occurred.

Run alone: ``python benchmarks/bench_ingest.py [--quick]`` (needs node for the load generator).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

CONCURRENCY = 16
ERROR_KEYS = (
    "ours_failed_requests",
    "ours_failed_reps",
    "baseline_failed_requests",
    "baseline_failed_reps",
)


def error_mark(err: dict[str, int]) -> str:
    """The suffix that marks a row whose figures came with failures ("" when none): failed
    requests are left out of the rate, so the rate alone would hide them."""
    parts = []
    for who in ("ours", "baseline"):
        req, reps = err.get(f"{who}_failed_requests", 0), err.get(f"{who}_failed_reps", 0)
        if req or reps:
            what = [f"{req} failed requests"] if req else []
            what += [f"{reps} failed reps"] if reps else []
            parts.append(f"{who} {' + '.join(what)}")
    return f" (ERRORS: {'; '.join(parts)})" if parts else ""


def http_run(
    server: h.BenchServer, mode: str, seconds: float, env: dict[str, str]
) -> tuple[float, int]:
    """(successful requests/s, failed requests): failures are not in the rate but are
    reported beside it, so a server that answers errors fast cannot pass for a fast one."""
    cfg = {
        "base": f"http://127.0.0.1:{server.port}",
        "mode": mode,
        "concurrency": CONCURRENCY,
        "duration_s": seconds,
    }
    lg = h.Proc(["node", str(h.BASELINES / "http_loadgen.js"), json.dumps(cfg)], env=env)
    try:
        res = json.loads(lg.expect("RESULT", seconds + 60))
    finally:
        lg.kill()
    if res["errors"] and not res["ok"]:
        raise RuntimeError(f"all {res['errors']} requests failed")
    return float(res["ok"]) / float(res["seconds"]), int(res["errors"])


def ws_publish_run(server: h.BenchServer, count: int, env: dict[str, str]) -> float:
    before = int(server.stats().get("events_in", 0))
    cfg = {"base": f"http://127.0.0.1:{server.port}", "mode": "wspublish", "count": count}
    lg = h.Proc(["node", str(h.BASELINES / "http_loadgen.js"), json.dumps(cfg)], env=env)
    try:
        lg.expect("OPEN", 30)
        t0 = time.perf_counter()
        deadline = t0 + 120
        while True:
            got = int(server.stats().get("events_in", 0)) - before
            if got >= count:
                return count / (time.perf_counter() - t0)
            if time.perf_counter() > deadline or lg.p.poll() not in (None, 0):
                err = " ".join(lg.stderr_tail[-3:])
                raise RuntimeError(f"server ingested {got} of {count} published events {err}")
            time.sleep(0.01)
    finally:
        lg.kill()


def run(
    *,
    quick: bool = False,
    reps: int = 3,
    node_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    if node_env is None:
        return {"rows": [], "skipped": "node not available for the load generator"}
    seconds = 0.5 if quick else 3.0
    count = 5_000 if quick else 50_000
    raw: dict[str, dict[str, list[float | None]]] = {}
    # per measure: failed requests (summed over reps) and failed reps, per side
    errors: dict[str, dict[str, int]] = {}

    def measure(key: str, who: str, fn: Any) -> None:
        err = errors.setdefault(key, dict.fromkeys(ERROR_KEYS, 0))
        try:
            value = fn()
            if isinstance(value, tuple):  # http_run: (rate, failed requests)
                value, failed = value
                err[f"{who}_failed_requests"] += failed
        except Exception as exc:
            log(f"  ingest {key} {who}: {exc}")
            value = None
            err[f"{who}_failed_reps"] += 1
        raw.setdefault(key, {}).setdefault(who, []).append(value)

    started: list[h.BenchServer] = []

    def start(name: str, cmd: list[str]) -> h.BenchServer:
        server = h.BenchServer(name, cmd)
        started.append(server)
        return server

    try:
        # Started inside the try: a failed start stops the servers already running.
        ours = start("wsnotebook", h.server_cmd("wsnotebook")[0])
        floor_http = start("aiohttp", [h.PY, str(h.BASELINES / "aiohttp_post.py")])
        floor_ws = start("websockets", h.server_cmd("websockets")[0])
        for rep in range(reps):
            for mode in ("keepalive", "close"):
                how = "keep-alive" if mode == "keepalive" else "Connection: close"
                key = f"POST /events req/s {how}"
                measure(key, "ours", lambda m=mode: http_run(ours, m, seconds, node_env))
                measure(key, "baseline", lambda m=mode: http_run(floor_http, m, seconds, node_env))
            key = "WebSocket publish ev/s"
            measure(key, "ours", lambda: ws_publish_run(ours, count, node_env))
            measure(key, "baseline", lambda: ws_publish_run(floor_ws, count, node_env))
            log(f"  ingest rep {rep + 1}/{reps}")
    finally:
        for s in started:
            s.close()
    rows = []
    for key, d in raw.items():
        o, b = h.median(d.get("ours", [])), h.median(d.get("baseline", []))
        err = errors.get(key, dict.fromkeys(ERROR_KEYS, 0))
        rows.append(
            {
                "measure": key + error_mark(err),
                "ours": o,
                "baseline": "minimal aiohttp handler" if "POST" in key else "bare websockets",
                "baseline_value": b,
                "ratio": h.ratio(o, b),
                "errors": err,
                "raw": d,
            }
        )
    return {"rows": rows, "concurrency": CONCURRENCY, "seconds": seconds, "ws_count": count}


def detail_table(rows: list[dict[str, Any]]) -> str:
    return h.ratio_table(rows, "ingest")


#: Issue 20's targets, ours / the bare baseline: (measure prefix, minimum ratio).
TARGETS = (("POST /events req/s keep-alive", 0.9), ("WebSocket publish ev/s", 0.8))


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = h.ratio_summary(rows, "5 ingest", "")
    for line, r in zip(out, rows):
        for prefix, floor in TARGETS:
            if r["measure"].startswith(prefix):
                ok = (
                    r["ratio"] is not None
                    and r["ratio"] >= floor
                    and not any((r.get("errors") or {}).values())
                )
                line[6:] = [f">= {floor}x", "met" if ok else "NOT met"]
    return out


def main(argv: list[str] | None = None) -> None:
    h.bench_main("ingest", __doc__, run, detail_table, argv)


if __name__ == "__main__":
    main()
