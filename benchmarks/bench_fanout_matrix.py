"""Fan-out matrix: events/s delivered per client and in aggregate, ours beside its peers.

Servers (each in its own process, same producer loop, same events: ~270 B stored, ~295 B as an
``event`` message):

* ``wsnotebook`` per event (``?batch=0``) and adaptive batching (``?batch=auto``, the client's
  default configuration);
* ``websockets``: a bare ``websockets`` broadcast server (baselines/ws_broadcast.py);
* ``node-ws``: a bare Node.js ``ws`` server, the seed's own stack (baselines/ws_server.js).

For C = 1, 10, 100 clients, deflate off and on, the producer publishes ``M`` events as fast as
the server accepts them; a load generator process (Node ``ws`` clients for every server: equal
client cost; a Python ``websockets`` client process too at C=10) counts what each client
receives.  Figures (``_harness.summarize``), medians of ``reps`` runs interleaved across servers:

* ``per client`` (the headline, its ratios and the verdict) = aggregate / C;
* ``aggregate`` = all events delivered / (last receive of any client - the moment the producer
  was told to GO);
* ``median client`` and ``slowest client``: each client's own events / (its last receive - GO).

Why aggregate / C: a server that serves its clients unevenly (ours: at C=100 per event the
median client ran 1.3-1.6x above aggregate / C) looks better on its median client than one
delivering in lockstep (node-ws, websockets: median = slowest = aggregate / C); aggregate / C
is the same figure for both, equals the slowest client's rate when every client got every
event, and counts dropped events as undelivered.

Verdict (C=10, deflate off, ``batch=auto`` >= 1.5x node-ws): "met" only when every client of
every rep got every event (no close, no timeout, no failed rep), else "NOT met (drops)".

Run alone: ``python benchmarks/bench_fanout_matrix.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

# (label, server impl, query string)
VARIANTS: list[tuple[str, str, str]] = [
    ("wsnotebook per-event", "wsnotebook", "batch=0"),
    ("wsnotebook batch=auto", "wsnotebook", "batch=auto"),
    ("websockets", "websockets", ""),
    ("node-ws", "node-ws", ""),
]


def sizes(quick: bool) -> dict[int, int]:
    """Events produced per run for each client count."""
    if quick:
        return {1: 3000, 10: 1000, 100: 200}
    return {1: 15000, 10: 6000, 100: 1500}


def start_servers(node_env: dict[str, str] | None) -> dict[str, h.BenchServer]:
    """Start every server under test; if one fails to start, stop those already running (the
    caller gets no dict to clean up) and re-raise."""
    servers: dict[str, h.BenchServer] = {}
    try:
        for impl in ("wsnotebook", "websockets", "node-ws"):
            cmd, needs_node = h.server_cmd(impl)
            if needs_node and node_env is None:
                continue
            servers[impl] = h.BenchServer(impl, cmd, env=node_env)
    except BaseException:
        for s in servers.values():
            s.close()
        raise
    return servers


def run(
    *,
    quick: bool = False,
    reps: int = 3,
    node_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    loadgens = ["node"] if node_env is not None else ["py"]
    servers = start_servers(node_env)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for clients, count in sizes(quick).items():
            for deflate in (False, True):
                if quick and deflate and clients != 10:
                    continue  # --quick: deflate on at C=10 only (and no Python load generator)
                plans = [(lg, clients) for lg in loadgens]
                if clients == 10 and "py" not in loadgens and not quick:
                    plans.append(("py", clients))
                for loadgen, c in plans:
                    for rep in range(reps):
                        for label, impl, query in VARIANTS:
                            if impl not in servers:
                                continue
                            key = f"C={c}|deflate={'on' if deflate else 'off'}|{loadgen}|{label}"
                            try:
                                r = h.run_load(
                                    servers[impl],
                                    loadgen=loadgen,
                                    query=query,
                                    clients=c,
                                    expect=count,
                                    rate=0,
                                    deflate=deflate,
                                    node_env=node_env,
                                    timeout=60 if quick else 120,
                                )
                            except Exception as exc:  # recorded, the suite goes on
                                r = {"error": str(exc)[:300]}
                            results.setdefault(key, []).append(r)
                        log(f"  fan-out C={c} deflate={deflate} {loadgen} rep {rep + 1}/{reps}")
    finally:
        for s in servers.values():
            s.close()
    return {"runs": results, "rows": aggregate(results), "sizes": sizes(quick), "reps": reps}


def aggregate(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for key, runs in results.items():
        c, deflate, loadgen, label = key.split("|")
        clients = int(c.split("=")[1])
        ok = [r for r in runs if "error" not in r]
        rows.append(
            {
                "clients": clients,
                "deflate": deflate.split("=")[1],
                "loadgen": loadgen,
                "server": label,
                # aggregate / C: the headline (see the module docstring)
                "per_client_evs": h.median(r["per_client_evs"] for r in ok),
                "median_client_evs": h.median(r.get("median_client_evs") for r in ok),
                "slowest_client_evs": h.median(r.get("slowest_client_evs") for r in ok),
                "aggregate_evs": h.median(r["aggregate_evs"] for r in ok),
                "delivered_min": min((r["delivered"] or 0.0) for r in ok) if ok else None,
                "closed_early": sum(r["closed_early"] for r in ok),
                "timed_out": sum(1 for r in ok if r.get("timed_out")),
                "p99_ms_under_flood": h.median((r["lat"] or {}).get("p99") for r in ok),
                # every client of every rep, not "some client somewhere": a partly refused
                # offer would otherwise be reported as deflate on
                "deflate_negotiated": bool(ok)
                and all(r.get("deflate_negotiated", 0) >= clients for r in ok),
                "errors": len(runs) - len(ok),
                "reps": len(runs),
            }
        )
    base: dict[tuple[int, str, str], dict[str, float | None]] = {}
    for r in rows:
        base.setdefault((r["clients"], r["deflate"], r["loadgen"]), {})[r["server"]] = r[
            "per_client_evs"
        ]
    for r in rows:
        b = base[(r["clients"], r["deflate"], r["loadgen"])]
        r["vs_node_ws"] = h.ratio(r["per_client_evs"], b.get("node-ws"))
        r["vs_websockets"] = h.ratio(r["per_client_evs"], b.get("websockets"))
    return rows


def complete(row: dict[str, Any]) -> bool:
    """Every client of every rep got every event: delivered 100 %, no client closed early, no
    timeout, no failed rep."""
    return (
        row.get("reps", 0) > 0
        and row.get("errors", 1) == 0
        and row.get("delivered_min") is not None
        and row["delivered_min"] >= 1.0
        and row.get("closed_early", 1) == 0
        and row.get("timed_out", 1) == 0
    )


def verdict(row: dict[str, Any], target: float = 1.5) -> str:
    """The throughput target's verdict: drops fail it whatever the rate."""
    if not complete(row):
        return "NOT met (drops)"
    return "met" if (row.get("vs_node_ws") or 0) >= target else "NOT met"


def detail_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "C",
        "deflate",
        "loadgen",
        "server",
        "per client (agg/C)",
        "median client",
        "slowest client",
        "aggregate ev/s",
        "vs node-ws",
        "vs websockets",
        "delivered",
        "p99 ms (flood)",
    ]
    out = []
    for r in rows:
        out.append(
            [
                r["clients"],
                r["deflate"]
                + ("" if r["deflate"] == "off" or r["deflate_negotiated"] else " (refused)"),
                r["loadgen"],
                r["server"],
                h.fmt(r["per_client_evs"]),
                h.fmt(r.get("median_client_evs")),
                h.fmt(r.get("slowest_client_evs")),
                h.fmt(r["aggregate_evs"]),
                h.fmt(r["vs_node_ws"], "x"),
                h.fmt(r["vs_websockets"], "x"),
                ("-" if r["delivered_min"] is None else f"{r['delivered_min']:.0%}")
                + ("" if complete(r) else " (drops)"),
                h.fmt(r["p99_ms_under_flood"]),
            ]
        )
    return h.table(out, header)


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows for run_all's one table: ours vs node-ws per (C, deflate), Node load generator;
    the figure is aggregate / C (see the module docstring)."""
    out: list[list[Any]] = []
    for r in rows:
        if r["loadgen"] != "node" or not r["server"].startswith("wsnotebook"):
            continue
        peer = next(
            (
                p
                for p in rows
                if p["server"] == "node-ws"
                and (p["clients"], p["deflate"], p["loadgen"])
                == (r["clients"], r["deflate"], r["loadgen"])
            ),
            None,
        )
        target = ""
        result = ""
        if r["clients"] == 10 and r["server"].endswith("auto") and r["deflate"] == "off":
            target = ">= 1.5x node-ws"
            result = verdict(r)
        refused = r["deflate"] == "on" and not r["deflate_negotiated"]
        out.append(
            [
                "1 fan-out",
                f"ev/s/client (agg/C) C={r['clients']} deflate {r['deflate']}"
                + (" (REFUSED: sent plain)" if refused else "")
                + f" {r['server'][11:]}"
                + ("" if complete(r) else " (DROPS)"),
                h.fmt(r["per_client_evs"]),
                "node-ws per-event" + ("" if peer is None or complete(peer) else " (DROPS)"),
                h.fmt(peer["per_client_evs"] if peer else None),
                h.fmt(r["vs_node_ws"], "x"),
                target,
                result,
            ]
        )
    return out


def main(argv: list[str] | None = None) -> None:
    h.bench_main("fanout_matrix", __doc__, run, detail_table, argv)


if __name__ == "__main__":
    main()
