"""The server's counters and their two renderings (JSON dict, Prometheus text).

:class:`ServerCounters` owns every counter a server keeps; the ingest path, the broadcast and
each connection bump its attributes directly (a plain attribute, no call, on the hot paths).
Invariants: counters only grow (``queue_max`` is a high-water mark); ``errors`` and
``rejected`` are keyed by kind / HTTP status and only gain keys; ``closed_events_out`` holds
the events delivered to connections that are gone, so ``events_out`` never goes down when a
client leaves.  All of it is touched on the loop thread only (``Server.metrics()`` hops there).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from ..stats import RateMeter

__all__ = ["Counter", "ServerCounters", "prometheus"]

#: Seconds of ingest the ``events_per_s`` rate averages over.
RATE_WINDOW = 10.0


class Counter(dict[str, int]):
    """Counts by kind (``errors``, ``rejected``)."""

    def bump(self, key: str, n: int = 1) -> None:
        self[key] = self.get(key, 0) + n


class _Queued(Protocol):
    """What the counters read of a live connection."""

    queue: Any
    pending: Any
    events_out: int


class ServerCounters:
    """Every counter of one server (see the module docstring for the invariants)."""

    __slots__ = (
        "bytes_out",
        "closed_events_out",
        "connections_total",
        "dropped_slow",
        "errors",
        "events_in",
        "messages_out",
        "queue_max",
        "rate",
        "rate_pending",
        "rejected",
    )

    def __init__(self) -> None:
        self.events_in = 0
        self.bytes_out = 0
        self.messages_out = 0
        self.connections_total = 0
        self.dropped_slow = 0
        self.closed_events_out = 0
        self.queue_max = 0
        self.errors = Counter()
        self.rejected = Counter()
        self.rate = RateMeter(window=RATE_WINDOW, clock=time.monotonic)
        #: events ingested one at a time this loop tick, not yet in ``rate``: the per-event
        #: path counts here (an attribute bump) and folds once per tick (:meth:`fold_rate`)
        self.rate_pending = 0

    def fold_rate(self) -> None:
        """Add the events counted in ``rate_pending`` to ``rate`` (once per loop tick, and
        before every read)."""
        n = self.rate_pending
        if n:
            self.rate_pending = 0
            self.rate.add(n)

    def note_sent(self, nbytes: int) -> None:
        """One message of ``nbytes`` payload bytes went out."""
        self.messages_out += 1
        self.bytes_out += nbytes

    def snapshot(self, clients: Iterable[_Queued]) -> dict[str, Any]:
        """The counter part of ``Server.metrics()`` (in its key order), given the live
        connections."""
        self.fold_rate()
        conns = list(clients)
        depths = [len(c.queue) + len(c.pending) for c in conns]
        return {
            "connections": len(conns),
            "connections_total": self.connections_total,
            "events_in": self.events_in,
            "events_out": sum(c.events_out for c in conns) + self.closed_events_out,
            "events_per_s": round(self.rate.rate(), 3),
            "messages_out": self.messages_out,
            "bytes_out": self.bytes_out,
            "errors": dict(self.errors),
            "dropped_slow_clients": self.dropped_slow,
            "queue_depth_max": self.queue_max,
            "queue_depth_current_max": max(depths, default=0),
            "queue_depth_total": sum(depths),
            "rejected": dict(self.rejected),
        }


_PROMETHEUS_KEYS = (
    "connections",
    "connections_total",
    "events_in",
    "events_out",
    "events_per_s",
    "messages_out",
    "bytes_out",
    "dropped_slow_clients",
    "queue_depth_max",
    "queue_depth_total",
    "uptime_s",
)
_GAUGES = frozenset({"connections", "events_per_s", "queue_depth_total"})
#: Of the running server's extra figures, those that go up and down (the rest count events).
_EXTRA_GAUGES = frozenset(
    {
        "open_connections",
        "admission_cap",
        "admission_reserve",
        "admission_idle",
        "admission_nofile_limit",
        "admission_nofile_raised_from",
        "store_retained_bytes",
        "store_retain_bytes",
        "queue_depth_current_max",
        "publish_nowait_pending",
        "connect_limiter_ips",
    }
)
#: The running server's top-level figures exported as they are (every numeric one of
#: ``metrics()`` is exported: these, the base counters above, and ``admission_*``,
#: ``store_*`` and ``hitl_*`` flattened).
_EXTRA_KEYS = (
    "open_connections",
    "queue_depth_current_max",
    "recent_truncated",
    "publish_nowait_pending",
    "publish_nowait_refused",
    "connect_limiter_ips",
)


def prometheus(metrics: dict[str, Any]) -> str:
    """``metrics`` (a ``Server.metrics()`` dict) in the Prometheus text format."""
    lines: list[str] = []
    for key in _PROMETHEUS_KEYS:
        value = metrics[key]
        kind = "gauge" if key in _GAUGES else "counter"
        lines.append(f"# TYPE wsnotebook_{key} {kind}")
        lines.append(f"wsnotebook_{key} {value}")
    lines.append("# TYPE wsnotebook_errors counter")
    for kind, n in sorted(metrics["errors"].items()):
        lines.append(f'wsnotebook_errors{{kind="{kind}"}} {n}')
    lines.append("# TYPE wsnotebook_rejected counter")
    for status, n in sorted(metrics["rejected"].items()):
        lines.append(f'wsnotebook_rejected{{status="{status}"}} {n}')
    # present on a running server (admission and store figures): gauges unless counted events
    extra: list[tuple[str, Any]] = [(k, metrics[k]) for k in _EXTRA_KEYS if k in metrics]
    for key, value in sorted((metrics.get("admission") or {}).items()):
        extra.append((f"admission_{key}", value))
    for key, value in sorted((metrics.get("hitl") or {}).items()):
        extra.append((f"hitl_{key}", value))
    store = metrics.get("store") or {}
    for key in ("retained_bytes", "retain_bytes"):
        if key in store:
            extra.append((f"store_{key}", store[key]))
    for key, value in extra:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        kind = "gauge" if key in _EXTRA_GAUGES else "counter"
        lines.append(f"# TYPE wsnotebook_{key} {kind}")
        lines.append(f"wsnotebook_{key} {value}")
    return "\n".join(lines) + "\n"
