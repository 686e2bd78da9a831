"""Scale-out on Redis Streams: ingest ev/s and one-way p99 through one Redis stream with 1, 2 and
3 wsnotebook servers, beside a single server on the SQLite store, measured in the same run.

* Redis: Debian's ``redis-server`` started here on a free loopback port in a temp dir
  (``wsnotebook.store.redis_local.LocalRedis``: AOF on, ``appendfsync always``, so a 200 means on
  disk, as with SQLite); each configuration gets a fresh stream.  Servers are ``python -m
  wsnotebook serve --store ...`` processes (the production path).
* Ingest: ``POSTERS`` poster processes, each posting batches of ``BATCH`` events over one
  keep-alive connection per server, round robin over the servers, for ``seconds``; the rate is
  the acknowledged (200) events per second.
* One-way latency: one paced producer process posts single events (``timestamp`` = send time,
  epoch ms) at ``RATE`` ev/s round robin over the servers; a ``wsnotebook.connect`` client in
  this process, on the last server, records ``client_received``; p50/p99 of
  ``client_received - timestamp`` over every event (with several servers most events cross
  servers: posted to one, read from the stream by another).

Run alone: ``python benchmarks/bench_redis.py [--quick]``; in the suite: ``run_all.py --only
redis``.  Without ``redis-server`` the suite says so and is skipped.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

POSTERS = 2  # processes
THREADS = 4  # request loops per poster process
BATCH = 50
RATE = 1000.0  # ev/s of the latency producer
#: (store, appendfsync, servers): SQLite first (the baseline), then Redis with ``everysec`` (a
#: 200 survives a crash of Redis's process, as SQLite's WAL with synchronous=NORMAL survives
#: one of the server's), and ``always`` (fsync before every reply) for its cost.
CONFIGS = (
    ("sqlite", "", 1),
    ("redis", "everysec", 1),
    ("redis", "everysec", 2),
    ("redis", "everysec", 3),
    ("redis", "always", 1),
    ("redis", "always", 3),
)


# --------------------------------------------------------------------------- worker processes


def _post_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    """Poster: ``threads`` request loops, each posting batches of ``batch`` events round robin
    over ``ports`` (one keep-alive connection per server) for ``seconds``."""
    import threading

    totals = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    end = time.perf_counter() + cfg["seconds"]

    def loop(seed: int) -> None:
        ports = cfg["ports"]
        conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports}
        ok = failed = 0
        i = seed
        while time.perf_counter() < end:
            port = ports[i % len(ports)]
            body = json.dumps([h.make_event(i * cfg["batch"] + k) for k in range(cfg["batch"])])
            i += 1
            try:
                conns[port].request("POST", "/events", body, {"Content-Type": "application/json"})
                resp = conns[port].getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                failed += cfg["batch"]
                conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if resp.status == 200:
                ok += cfg["batch"]
            else:
                failed += cfg["batch"]
        with lock:
            totals["ok"] += ok
            totals["failed"] += failed

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(cfg["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**totals, "seconds": time.perf_counter() - t0}


def _pace_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    """Paced producer: single events at ``rate`` ev/s round robin over ``ports``."""
    conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in cfg["ports"]}
    count, rate = cfg["count"], cfg["rate"]
    ok = 0
    t0 = time.perf_counter()
    for i in range(count):
        due = t0 + i / rate
        while (left := due - time.perf_counter()) > 0:
            time.sleep(min(left, 0.001))
        port = cfg["ports"][i % len(cfg["ports"])]
        event = h.make_event(i, ts=time.time() * 1000.0)
        event["source_app"] = "paced"
        conns[port].request(
            "POST", "/events", json.dumps(event), {"Content-Type": "application/json"}
        )
        resp = conns[port].getresponse()
        resp.read()
        ok += resp.status == 200
    return {"ok": ok, "seconds": time.perf_counter() - t0}


def worker(kind: str, cfg_json: str) -> None:
    cfg = json.loads(cfg_json)
    out = _post_loop(cfg) if kind == "post" else _pace_loop(cfg)
    print("RESULT", json.dumps(out), flush=True)


# --------------------------------------------------------------------------- the benchmark


class Serve(h.Proc):
    """``python -m wsnotebook serve --port 0 --store URL``."""

    def __init__(self, store: str) -> None:
        super().__init__([h.PY, "-m", "wsnotebook", "serve", "--port", "0", "--store", store])
        try:
            self.port = int(self.expect("wsnotebook server listening on", 60).rsplit(":", 1)[1])
            self.expect("Press Ctrl-C", 30)
        except BaseException:
            self.kill()
            raise

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=15)
            except Exception:
                self.p.kill()
                self.p.wait(timeout=5)


def run_workers(kind: str, n: int, cfg: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    procs = [
        h.Proc([h.PY, str(Path(__file__).resolve()), "--worker", kind, json.dumps(cfg)])
        for _ in range(n)
    ]
    try:
        return [json.loads(p.expect("RESULT", timeout)) for p in procs]
    finally:
        for p in procs:
            p.kill()


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def measure(
    store: str, servers: int, seconds: float, count: int, redis_pid: int | None
) -> dict[str, Any]:
    """Start ``servers`` servers on ``store``; ingest ev/s, then one-way latency.  Also the
    CPU seconds Redis and the servers used per second of the ingest run (what limits it)."""
    import wsnotebook as wsn

    procs = [Serve(store) for _ in range(servers)]
    client = None
    try:
        ports = [p.port for p in procs]
        cfg = {"ports": ports, "seconds": seconds, "batch": BATCH, "threads": THREADS}
        server_pids = [p.p.pid for p in procs]
        cpu0 = cpu_seconds(server_pids), cpu_seconds([redis_pid]) if redis_pid else 0.0
        t0 = time.perf_counter()
        res = run_workers("post", POSTERS, cfg, seconds + 120)
        wall = time.perf_counter() - t0
        cpu = {
            "servers_cores": (cpu_seconds(server_pids) - cpu0[0]) / wall,
            "redis_cores": ((cpu_seconds([redis_pid]) - cpu0[1]) / wall) if redis_pid else None,
        }
        ingest = sum(r["ok"] for r in res) / max(r["seconds"] for r in res)
        failed = sum(r["failed"] for r in res)
        client = wsn.connect(f"ws://127.0.0.1:{ports[-1]}/stream")
        client.wait_state("open", timeout=30)
        start_total = client.frame.total
        pace = run_workers("pace", 1, {"ports": ports, "count": count, "rate": RATE}, 300)[0]
        deadline = time.monotonic() + 60
        while client.frame.total - start_total < pace["ok"] and time.monotonic() < deadline:
            time.sleep(0.02)
        df = client.frame.df
        df = df[df["source_app"] == "paced"]  # the initial snapshot holds the posters' events
        lat = sorted(v for v in df["latency_ms"].tolist() if v == v)  # client_received - ts
        return {
            "ingest_ev_s": ingest,
            "ingest_failed": failed,
            "ingest_cpu": cpu,
            "latency_ms": h.pcts(lat),
            "latency_events": len(lat),
            "paced": pace,
        }
    finally:
        if client is not None:
            client.close()
        for p in procs:
            p.close()


def run(
    *,
    quick: bool = False,
    reps: int = 3,
    node_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    from wsnotebook.store.redis_local import LocalRedis, redis_server_path

    if redis_server_path() is None:
        return {"rows": [], "skipped": "redis-server not installed (make setup installs it)"}
    seconds = 1.0 if quick else 4.0
    count = 1000 if quick else 4000
    raw: dict[str, list[dict[str, Any]]] = {}
    tmp = tempfile.TemporaryDirectory(prefix="wsn-bench-redis-")
    redis = {"everysec": LocalRedis(appendfsync="everysec"), "always": LocalRedis()}
    try:
        for rep in range(reps):
            for kind, fsync, n in CONFIGS:
                key = f"{kind}{'-' + fsync if fsync else ''}x{n}"
                pid = None
                if kind == "sqlite":
                    store = f"sqlite:///{tmp.name}/bench{rep}.db"
                else:
                    store = redis[fsync].store_url(f"bench-{key}-{rep}")
                    pid = redis[fsync].proc.pid if redis[fsync].proc else None
                res = measure(store, n, seconds, count, pid)
                raw.setdefault(key, []).append(res)
                log(
                    f"  redis {key} rep {rep + 1}/{reps}: {res['ingest_ev_s']:.0f} ev/s, "
                    f"p99 {res['latency_ms'].get('p99')} ms, cores: {res['ingest_cpu']}"
                )
    finally:
        for r in redis.values():
            r.close()
        tmp.cleanup()
    base = raw["sqlitex1"]
    b_rate = h.median(r["ingest_ev_s"] for r in base)
    b_p99 = h.median(r["latency_ms"].get("p99") for r in base)
    rows = []
    for kind, fsync, n in CONFIGS[1:]:
        d = raw[f"{kind}-{fsync}x{n}"]
        o_rate = h.median(r["ingest_ev_s"] for r in d)
        o_p99 = h.median(r["latency_ms"].get("p99") for r in d)
        failed = sum(r["ingest_failed"] for r in d)
        mark = f" (ERRORS: {failed} failed events)" if failed else ""
        servers = f"{n} server{'s' if n > 1 else ''} (appendfsync {fsync})"
        rows.append(
            {
                "measure": f"ingest ev/s, POST batches of {BATCH}, Redis {servers}{mark}",
                "ours": o_rate,
                "baseline": "SQLite, 1 server",
                "baseline_value": b_rate,
                "ratio": h.ratio(o_rate, b_rate),
                "raw": [r["ingest_ev_s"] for r in d],
            }
        )
        rows.append(
            {
                "measure": f"one-way p99 ms at {RATE:.0f} ev/s, Redis {servers}",
                "ours": o_p99,
                "baseline": "SQLite, 1 server",
                "baseline_value": b_p99,
                "ratio": h.ratio(o_p99, b_p99),
                "raw": [r["latency_ms"] for r in d],
            }
        )
    return {
        "rows": rows,
        "posters": POSTERS,
        "batch": BATCH,
        "seconds": seconds,
        "rate": RATE,
        "count": count,
        "sqlite_raw": base,
        "redis_raw": {k: v for k, v in raw.items() if k != "sqlitex1"},
    }


def detail_table(rows: list[dict[str, Any]]) -> str:
    return h.ratio_table(rows, "redis scale-out")


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return h.ratio_summary(rows, "9 redis", "")


def main(argv: list[str] | None = None) -> None:
    h.bench_main("redis", __doc__, run, detail_table, argv, node=False)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
