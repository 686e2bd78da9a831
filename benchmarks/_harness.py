"""Shared harness of the wsnotebook benchmarks: server/load-generator processes, stats, tables.

Every server under test (ours and the baselines) runs in its own process and speaks the same
stdin/stdout control protocol, so the orchestrator treats them alike:

* the server prints ``PORT <n>`` once listening on 127.0.0.1 (port 0: any free port);
* ``GO <count> <rate> <chunk>`` produces ``count`` events (``make_event``: ~220 bytes as
  produced, ~270 once the server adds ``id`` and ``server_received``, ~295 as an ``event``
  message) at ``rate`` ev/s (0 = as fast as possible, yielding to I/O every ``chunk`` events)
  and answers ``DONE <count> <s>``;
* ``STATS`` answers ``STATS {json}`` (with ``rss``); ``STATS gc`` first runs a full garbage
  collection (``gc.collect()`` / node's ``global.gc()``, node started with ``--expose-gc``) and
  says so with ``"gc": true``, so RSS reads do not bill uncollected garbage to one runtime;
  ``QUIT`` (or stdin EOF) exits.

Load generators (``baselines/ws_loadgen.js``, ``baselines/py_loadgen.py``) take one JSON argument,
print ``READY`` when every client holds its initial snapshot, and ``RESULT {json}`` at the end.
Every process is bounded by timeouts and killed on exit; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINES = HERE / "baselines"
NODE_DIR = HERE / ".node"
RESULTS = HERE / "results"
PY = sys.executable

PAD = "x" * 64


def now_ms() -> float:
    """Wall clock in epoch milliseconds (float): the producers stamp events with it."""
    return time.time() * 1000.0


def make_event(i: int, ts: float | None = None) -> dict[str, Any]:
    """The benchmark event: ~220 bytes of JSON as produced, ~270 once the server adds ``id``
    and ``server_received``, ~295 as an ``{"type":"event","data":...}`` message (the exact size
    varies by a few bytes with the digits of ``seq``, ``id`` and the timestamps)."""
    return {
        "source_app": "bench",
        "session_id": f"session-{i % 8}",
        "hook_event_type": "PreToolUse",
        "payload": {"tool_name": "Bash", "seq": i, "pad": PAD},
        "timestamp": now_ms() if ts is None else ts,
    }


# --------------------------------------------------------------------------- statistics


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (q in [0, 1])."""
    if not sorted_values:
        return None
    n = len(sorted_values)
    idx = min(n - 1, max(0, math.ceil(q * n) - 1))
    return sorted_values[idx]


def pcts(values: Iterable[float]) -> dict[str, float | None]:
    s = sorted(values)
    return {
        "p50": percentile(s, 0.5),
        "p90": percentile(s, 0.9),
        "p99": percentile(s, 0.99),
        "p99_9": percentile(s, 0.999),
        "max": s[-1] if s else None,
        "n": len(s),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def timed_reps(fn: Callable[[], float], reps: int) -> list[float]:
    return [fn() for _ in range(reps)]


# --------------------------------------------------------------------------- node


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_node(log: Callable[[str], None] = print) -> dict[str, str] | None:
    """Install the pinned ``ws`` into ``benchmarks/.node`` (once); return the env for node.

    Returns ``None`` (Node baselines skipped, reported as such) when node/npm are missing or the
    install fails.
    """
    if not node_available():
        log("node/npm not found: Node ws baseline skipped")
        return None
    pkg = (BASELINES / "package.json").read_text()
    NODE_DIR.mkdir(exist_ok=True)
    target = NODE_DIR / "package.json"
    ok = (NODE_DIR / "node_modules" / "ws" / "package.json").exists()
    if not ok or not target.exists() or target.read_text() != pkg:
        target.write_text(pkg)
        log("installing the pinned Node ws into benchmarks/.node ...")
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            log(f"npm install failed: Node ws baseline skipped\n{proc.stderr[-400:]}")
            return None
    env = dict(os.environ)
    env["NODE_PATH"] = str(NODE_DIR / "node_modules")
    return env


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process with a line-oriented stdout reader and a bounded ``expect``."""

    def __init__(self, cmd: list[str], *, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        self.p = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
            cwd=str(HERE),
        )
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.stderr_tail: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.stderr_tail.append(line.rstrip("\n"))
            del self.stderr_tail[:-20]

    def expect(self, prefix: str, timeout: float) -> str:
        """Wait for the next line starting with ``prefix``; return the rest of it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for k, line in enumerate(self._lines):
                    if line.startswith(prefix):
                        del self._lines[: k + 1]
                        return line[len(prefix) :].strip()
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    err = "\n".join(self.stderr_tail[-10:])
                    why = "exited" if self._eof else "timed out"
                    raise RuntimeError(f"{self.cmd[:3]} {why} waiting for {prefix!r}\n{err}")
                self._cond.wait(left)

    def send(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def kill(self) -> None:
        """Stop at once (load generators that do not read stdin)."""
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)

    def close(self) -> None:
        if self.p.poll() is not None:
            return
        try:
            self.send("QUIT")
        except Exception:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=5)


class BenchServer(Proc):
    """A server under test speaking the control protocol (see module docstring)."""

    def __init__(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None) -> None:
        super().__init__(cmd, env=env)
        self.name = name
        try:
            self.port = int(self.expect("PORT", 60))
        except BaseException:
            # The caller never gets the object, so nobody else could stop this child.
            self.kill()
            raise

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/stream" + (f"?{query}" if query else "")

    def go(self, count: int, rate: float, chunk: int = 100, timeout: float = 120) -> float:
        self.send(f"GO {count} {rate} {chunk}")
        return float(self.expect("DONE", timeout).split()[1])

    def stats(self, *, collect: bool = False) -> dict[str, Any]:
        """The server's STATS; ``collect`` runs a full GC in the server first (RSS reads) and
        fails if the server could not (a node started without ``--expose-gc``)."""
        self.send("STATS gc" if collect else "STATS")
        out = dict(json.loads(self.expect("STATS", 30)))
        if collect and not out.get("gc"):
            raise RuntimeError(f"{self.name}: STATS gc did not run a garbage collection")
        return out


def server_cmd(impl: str) -> tuple[list[str], bool]:
    """Command line of a server implementation; the bool says whether it needs node."""
    if impl == "node-ws":
        # --expose-gc: ``STATS gc`` can collect V8 garbage before an RSS read (bench_memory).
        return ["node", "--expose-gc", str(BASELINES / "ws_server.js"), "0"], True
    if impl == "websockets":
        return [PY, str(BASELINES / "ws_broadcast.py")], False
    if impl == "wsnotebook":
        return [PY, str(HERE / "_ours_server.py")], False
    raise ValueError(impl)


def run_load(
    server: BenchServer,
    *,
    loadgen: str,
    query: str,
    clients: int,
    expect: int,
    rate: float,
    deflate: bool,
    node_env: dict[str, str] | None,
    chunk: int = 100,
    timeout: float = 60,
    lean: bool = True,
) -> dict[str, Any]:
    """One measured run: start the load generator, wait READY, produce, collect the RESULT.

    ``lean`` (Node load generator only): find events by scanning the raw message instead of a
    full ``JSON.parse``, so the clients cost little and the server is what gets measured.
    """
    cfg = {
        "url": server.url(query),
        "clients": clients,
        "expect": expect,
        "timeout_s": timeout,
        "deflate": deflate,
        "max_samples": 2_000_000,
        "lean": lean,
    }
    if loadgen == "node":
        cmd = ["node", str(BASELINES / "ws_loadgen.js"), json.dumps(cfg)]
        env = node_env
    else:
        cmd = [PY, str(BASELINES / "py_loadgen.py"), json.dumps(cfg)]
        env = None
    lg = Proc(cmd, env=env)
    try:
        lg.expect("READY", 60)
        t0 = time.monotonic()
        go_ms = time.time() * 1000.0  # same clock as the load generators' receive stamps
        produce_s = server.go(expect, rate, chunk, timeout=timeout + 30)
        res = dict(json.loads(lg.expect("RESULT", timeout + 30)))
        res["go_ms"] = go_ms
        res["produce_s"] = produce_s
        res["wall_s"] = time.monotonic() - t0
        return summarize(res, clients=clients, expect=expect)
    finally:
        lg.kill()


def summarize(res: dict[str, Any], *, clients: int, expect: int) -> dict[str, Any]:
    """Per-client and aggregate delivered events/s from a load generator RESULT.

    ``per_client_evs`` (the headline figure) = ``aggregate_evs`` / C: all events delivered / the
    span from the moment the producer was told to GO to the last receive of any client, per
    client.  For a server that delivers to its clients in lockstep it equals each client's own
    rate; for one that serves them unevenly it is what the clients got on average over the
    time it took to serve them all, so neither a fast median nor dropped clients flatter it.

    Each client's own rate = events it received / (its last receive - GO), fair to servers
    that batch; their median and minimum are kept as ``median_client_evs`` and
    ``slowest_client_evs`` (a client that received nothing counts as 0).  The former
    (n - 1) / (last - first receive) is kept as ``per_client_evs_steady``: it is meaningless when
    a few batch messages carry all events.  Without ``go_ms`` (not from ``run_load``) the span
    starts at the first receive and the per-client rates are the steady ones.
    """
    rows = res["clients"]
    go_ms = res.get("go_ms")
    per_client, steady = [], []
    total = 0
    firsts, lasts = [], []
    for count, first, last, _code in rows:
        total += count
        if count > 1 and last > first:
            steady.append((count - 1) / ((last - first) / 1000.0))
            if go_ms is None:
                firsts.append(first)
                lasts.append(last)
        if go_ms is not None:
            if count > 0 and last > go_ms:
                per_client.append(count / ((last - go_ms) / 1000.0))
                firsts.append(go_ms)
                lasts.append(last)
            else:
                per_client.append(0.0)
    if go_ms is None:
        per_client = steady
    span = (max(lasts) - min(firsts)) / 1000.0 if firsts else 0.0
    aggregate = (total / span) if span > 0 else None
    closed = sum(1 for r in rows if r[3] not in (0, None) and r[0] < expect)
    return {
        "per_client_evs": aggregate / clients if aggregate is not None and clients else None,
        "median_client_evs": median(per_client),
        "slowest_client_evs": min(per_client) if per_client else None,
        "per_client_evs_steady": median(steady),
        "aggregate_evs": aggregate,
        "delivered": total / float(clients * expect) if clients and expect else None,
        "closed_early": closed,
        "timed_out": bool(res.get("timed_out")),
        "connect_errors": res.get("connect_errors", 0),
        "deflate_negotiated": res.get("deflate_negotiated", 0),
        "lat": res.get("lat"),
        "produce_s": res.get("produce_s"),
    }


# --------------------------------------------------------------------------- output


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if unit == "x":
            return f"{value:.2f}x"
        if abs(value) >= 100_000:
            return f"{value / 1000:,.0f}k{unit}"
        if abs(value) >= 100:
            return f"{value:,.0f}{unit}"
        if abs(value) >= 10:
            return f"{value:.1f}{unit}"
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table (also valid GitHub markdown)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        import aiohttp
        import websockets

        info["aiohttp"] = aiohttp.__version__
        info["websockets"] = websockets.__version__
    except Exception:  # pragma: no cover
        pass
    if node_available():
        try:
            out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
            info["node"] = out.stdout.strip()
        except Exception:  # pragma: no cover
            pass
    return info


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


# --------------------------------------------------------------------------- shared CLI and tables


def ratio_table(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Detail table for rows of ``measure, ours, baseline, baseline_value, ratio``."""
    return table(
        [
            [
                r["measure"],
                fmt(r["ours"]),
                r["baseline"],
                fmt(r["baseline_value"]),
                fmt(r["ratio"], "x"),
            ]
            for r in rows
        ],
        [title, "ours", "baseline", "baseline value", "ours/baseline"],
    )


def ratio_summary(rows: Sequence[dict[str, Any]], label: str, target: str = "") -> list[list[Any]]:
    """Rows of the one-table summary for ``measure, ours, baseline, baseline_value, ratio``."""
    return [
        [
            label,
            r["measure"],
            fmt(r["ours"]),
            r["baseline"],
            fmt(r["baseline_value"]),
            fmt(r["ratio"], "x"),
            target,
            "",
        ]
        for r in rows
    ]


def bench_main(
    name: str,
    doc: str | None,
    run: Callable[..., dict[str, Any]],
    detail_table: Callable[[list[dict[str, Any]]], str],
    argv: list[str] | None = None,
    *,
    node: bool = True,
) -> None:
    """The command line every ``bench_*.py`` module shares: ``[--quick] [--reps N]``; prints the
    detail table and writes ``results/<name>.json``."""
    import argparse

    ap = argparse.ArgumentParser(description=(doc or name).splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    kwargs: dict[str, Any] = {"quick": args.quick, "reps": args.reps}
    if node:
        kwargs["node_env"] = ensure_node()
    res = run(**kwargs)
    print(detail_table(res["rows"]))
    print("wrote", write_json(name, {"machine": machine(), **res}))
