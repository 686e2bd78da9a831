"""Memory: server RSS with 1,000 idle WebSocket connections; EventFrame RSS per retained event.

* Connections: each server starts fresh (own process), we read its RSS, a Node ``ws`` load
  generator opens 1,000 idle connections (each gets its ``initial`` snapshot), and we read the
  RSS again: bytes per connection = delta / 1000.  Each RSS read follows a full garbage
  collection in the server (``STATS gc``: ``gc.collect()`` in the Python servers,
  ``global.gc()`` in node, started with ``--expose-gc``), so no runtime's uncollected garbage
  (V8's, above all) counts as memory per connection.  Ours beside the bare ``websockets`` and
  Node ``ws`` servers, same run.  ``RLIMIT_NOFILE`` is raised to its hard limit first.
* Frame: ``benchmarks/bench_frame.py``'s fresh-subprocess measurement (``rss_per_event``): RSS
  per event retained in an ``EventFrame`` beside retaining the decoded dicts.

Run alone: ``python benchmarks/bench_memory.py [--quick]``.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

CONNECTIONS = 1000


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def conn_rss(impl: str, n: int, node_env: dict[str, str]) -> float:
    """RSS bytes per idle connection of a fresh ``impl`` server holding ``n`` connections."""
    cmd, _ = h.server_cmd(impl)
    server = h.BenchServer(impl, cmd, env=node_env)
    try:
        server.go(300, 0, 100)  # a realistic initial snapshot to send
        before = int(server.stats(collect=True)["rss"])
        cfg = {
            "url": server.url("batch=auto" if impl == "wsnotebook" else ""),
            "clients": n,
            "expect": 10**9,
            "timeout_s": 120,
            "deflate": False,
            "lean": True,
        }
        import json

        lg = h.Proc(["node", str(h.BASELINES / "ws_loadgen.js"), json.dumps(cfg)], env=node_env)
        try:
            lg.expect("READY", 120)
            st = server.stats(collect=True)
            if int(st.get("connections", n)) < n:
                raise RuntimeError(f"{impl}: only {st.get('connections')} of {n} connected")
            return (int(st["rss"]) - before) / n
        finally:
            lg.kill()
    finally:
        server.close()


def frame_rss(quick: bool, reps: int) -> dict[str, Any]:
    sys.path.insert(0, str(h.ROOT))
    from benchmarks.bench_frame import rss_per_event

    n = 50_000 if quick else 500_000
    ours = [rss_per_event("frame", n)[0] for _ in range(reps)]
    base = [rss_per_event("dicts", n)[0] for _ in range(reps)]
    return {"n": n, "frame": ours, "dicts": base}


def run(
    *,
    quick: bool = False,
    reps: int = 3,
    node_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    raise_nofile()
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    if node_env is not None:
        n = 200 if quick else CONNECTIONS
        per: dict[str, list[float | None]] = {}
        for rep in range(reps):
            for impl in ("wsnotebook", "websockets", "node-ws"):
                try:
                    per.setdefault(impl, []).append(conn_rss(impl, n, node_env))
                except Exception as exc:
                    log(f"  memory {impl}: {exc}")
                    per.setdefault(impl, []).append(None)
            log(f"  memory connections rep {rep + 1}/{reps}")
        raw["connections"] = {"n": n, **per}
        ours = h.median(per["wsnotebook"])
        for impl in ("websockets", "node-ws"):
            b = h.median(per[impl])
            rows.append(
                {
                    "measure": f"server RSS bytes per idle connection (n={n})",
                    "ours": ours,
                    "baseline": impl,
                    "baseline_value": b,
                    "ratio": h.ratio(ours, b),
                }
            )
    try:
        fr = frame_rss(quick, reps)
        raw["frame"] = fr
        o, b = h.median(fr["frame"]), h.median(fr["dicts"])
        rows.append(
            {
                "measure": f"EventFrame RSS bytes per retained event (n={fr['n']})",
                "ours": o,
                "baseline": "list of decoded dicts",
                "baseline_value": b,
                "ratio": h.ratio(o, b),
            }
        )
        log("  memory frame done")
    except Exception as exc:
        log(f"  memory frame: {exc}")
    return {"rows": rows, "raw": raw}


def detail_table(rows: list[dict[str, Any]]) -> str:
    return h.ratio_table(rows, "memory")


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return h.ratio_summary(rows, "7 memory", "lower is better")


def main(argv: list[str] | None = None) -> None:
    h.bench_main("memory", __doc__, run, detail_table, argv)


if __name__ == "__main__":
    main()
