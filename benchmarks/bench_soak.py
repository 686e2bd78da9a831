"""Normal ``POST /events`` p99 under a soak of hostile and idle traffic vs the same server quiet.

Issue 23's target: under mixed valid, hostile and idle traffic, a normal poster's p99 stays
within 5x its quiet value.  One server process (``_ours_server.py`` with the soak's options:
16 MiB byte budget, 1 MiB messages, 2 s header timeout) serves both phases of every rep:

* **quiet** (the baseline): the measured poster alone;
* **soak**: the same poster while a second process (``soak_traffic.py hostile``) runs two more
  paced posters, a ~200 KB-event poster (constant eviction), a cycle of hostile HTTP requests
  (bad JSON, wrong content type, oversized body, foreign Host, corrupt gzip, an aborted body),
  WebSocket clients sending garbage until closed with 1008, and 60 idle TCP connections.

The measured poster is its own process (``soak_traffic.py measured``): one keep-alive
connection, paced at ``RATE`` POST/s, timing each request from send to full reply.  Phases
alternate (quiet-soak, soak-quiet, ...) so drift of the machine's speed hits both sides.  The
figure is the median over reps of each phase's p99; the ratio is soak / quiet.  Every phase
checks that every measured POST got its 200 and the hostile process saw its documented statuses.

Run alone: ``python benchmarks/bench_soak.py [--quick] [--reps N]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h
from soak_traffic import SOAK_SERVER_OPTIONS

RATE = 150.0  # measured POST/s: the soak test's normal poster rate
TARGET_RATIO = 5.0
#: the documented replies of each hostile request (docs/protocol.md)
EXPECTED_STATUSES = {
    "bad_json": [400],
    "content_type": [415],
    "oversized": [413],
    "foreign_host": [421],
    "corrupt_gzip": [400],
}


def duration(quick: bool) -> float:
    """Seconds the measured poster runs per phase."""
    return 3.0 if quick else 10.0


def measure(port: int, seconds: float) -> dict[str, Any]:
    """One measured phase: the paced poster process's latencies, summarized."""
    cmd = [h.PY, str(h.HERE / "soak_traffic.py"), "measured", str(port), str(RATE), str(seconds)]
    proc = h.Proc(cmd)
    try:
        res = dict(json.loads(proc.expect("RESULT", seconds + 60)))
    finally:
        proc.kill()
    lat = res.pop("latencies_ms")
    res.update(h.pcts(lat))
    return res


def soak_phase(server: h.BenchServer, seconds: float) -> dict[str, Any]:
    """The measured phase with the hostile process running; the server's rejections counted."""
    before = server.stats()
    hostile = h.Proc([h.PY, str(h.HERE / "soak_traffic.py"), "hostile", str(server.port)])
    try:
        hostile.expect("READY", 30)
        res = measure(server.port, seconds)
        hostile.send("QUIT")
        res["hostile"] = dict(json.loads(hostile.expect("RESULT", 90)))
    finally:
        hostile.kill()
    after = server.stats(collect=True)
    rejected = {
        k: int(v) - int(before.get("rejected", {}).get(k, 0))
        for k, v in after.get("rejected", {}).items()
    }
    res["server_rejected"] = {k: v for k, v in rejected.items() if v}
    res["server_rss_mib"] = round(after["rss"] / 2**20, 1)
    res["store_retained_bytes"] = after.get("store", {}).get("retained_bytes")
    statuses = res["hostile"].get("hostile_statuses", {})
    res["statuses_ok"] = all(statuses.get(k) == v for k, v in EXPECTED_STATUSES.items())
    return res


def run(
    *,
    quick: bool = False,
    reps: int = 3,
    node_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    del node_env  # Python-only traffic on both sides
    seconds = duration(quick)
    cmd, _ = h.server_cmd("wsnotebook")
    server = h.BenchServer("wsnotebook", [*cmd, json.dumps(SOAK_SERVER_OPTIONS)])
    phases: dict[str, list[dict[str, Any]]] = {"quiet": [], "soak": []}
    try:
        measure(server.port, 1.0)  # warm-up: imports, first connections, allocator
        for rep in range(reps):
            order = ("quiet", "soak") if rep % 2 == 0 else ("soak", "quiet")
            for phase in order:
                try:
                    r = measure(server.port, seconds) if phase == "quiet" else None
                    r = r if r is not None else soak_phase(server, seconds)
                except Exception as exc:
                    r = {"error": str(exc)[:300]}
                phases[phase].append(r)
            log(f"  soak rep {rep + 1}/{reps}")
    finally:
        server.close()
    rows = []
    for phase, rs in phases.items():
        ok = [r for r in rs if "error" not in r]
        row: dict[str, Any] = {"phase": phase, "reps": len(rs), "errors": len(rs) - len(ok)}
        for q in ("p50", "p99", "p99_9", "max"):
            row[q] = h.median(r[q] for r in ok)
        row["posts"] = sum(r["posts"] for r in ok)
        row["failed_posts"] = sum(r["failure_count"] for r in ok)
        if phase == "soak":
            row["statuses_ok"] = all(r["statuses_ok"] for r in ok) if ok else False
            row["ws_1008_closes"] = sum(r["hostile"]["ws_closes"] for r in ok)
            row["idle_opened"] = sum(r["hostile"]["idle_opened"] for r in ok)
            row["server_rss_mib_max"] = max((r["server_rss_mib"] for r in ok), default=None)
        rows.append(row)
    by = {r["phase"]: r for r in rows}
    by["soak"]["p99_vs_quiet"] = h.ratio(by["soak"]["p99"], by["quiet"]["p99"])
    by["soak"]["p50_vs_quiet"] = h.ratio(by["soak"]["p50"], by["quiet"]["p50"])
    return {
        "rows": rows,
        "phases": phases,
        "rate": RATE,
        "duration_s": seconds,
        "server_options": SOAK_SERVER_OPTIONS,
    }


def detail_table(rows: list[dict[str, Any]]) -> str:
    header = ["phase", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "posts", "failed", "p99/quiet"]
    out = [
        [
            r["phase"],
            h.fmt(r["p50"]),
            h.fmt(r["p99"]),
            h.fmt(r["p99_9"]),
            h.fmt(r["max"]),
            r["posts"],
            r["failed_posts"],
            h.fmt(r.get("p99_vs_quiet"), "x"),
        ]
        for r in rows
    ]
    return h.table(out, header)


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    by = {r["phase"]: r for r in rows}
    soak, quiet = by.get("soak"), by.get("quiet")
    if soak is None or quiet is None:
        return []
    ratio = soak.get("p99_vs_quiet")
    clean = soak["failed_posts"] == 0 and quiet["failed_posts"] == 0 and soak["statuses_ok"]
    if ratio is None:
        verdict = ""
    elif not clean:
        verdict = "NOT met (failed posts or wrong statuses)"
    else:
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    return [
        [
            "8 soak",
            f"POST p99 ms @{RATE:g}/s under hostile+idle soak",
            h.fmt(soak["p99"]),
            "same server quiet",
            h.fmt(quiet["p99"]),
            h.fmt(ratio, "x"),
            f"<= {TARGET_RATIO:g}x",
            verdict,
        ]
    ]


def main(argv: list[str] | None = None) -> None:
    h.bench_main("soak", __doc__, run, detail_table, argv, node=False)


if __name__ == "__main__":
    main()
