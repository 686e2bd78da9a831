"""The demo's one-line live summary: formatting (pure) and reading the figures off a client.

Pure and I/O-free apart from asking the client for its metrics; every figure that cannot be
read shows as ``-`` (or falls back to the client's frame), never raises: the summary line must
keep refreshing while the client reconnects or a metric is missing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["client_latency", "first", "fmt_ms", "summary_line"]


def fmt_ms(value: Any) -> str:
    """A latency in ms for the summary: ``-`` for a missing or NaN value."""
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    if v != v:  # NaN
        return "-"
    return f"{v:.1f}ms" if v < 100 else f"{v:.0f}ms"


def first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    """The value of the first key of ``keys`` present and not ``None`` in ``d``."""
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def summary_line(
    *,
    events: int,
    rate: float,
    clients: int,
    p50: float | None,
    p99: float | None,
    reconnects: int,
    sent: int,
    elapsed: float,
) -> str:
    """The demo's one-line summary (pure; tested)."""
    return (
        f"[{elapsed:6.1f}s] events {events:>8,d} | {rate:8.1f} ev/s | clients {clients:>3d} | "
        f"latency p50 {fmt_ms(p50):>7} p99 {fmt_ms(p99):>7} | reconnects {reconnects} | "
        f"sent {sent:,d}"
    )


def client_latency(client: Any) -> tuple[float | None, float | None]:
    """(p50, p99) producer->client latency in ms from the client's metrics or its frame."""
    try:
        m = client.metrics()
    except Exception:
        m = {}
    lat = m.get("latency_ms") if isinstance(m, dict) else None
    if isinstance(lat, dict):
        p50 = first(lat, "p50", "0.5")
        p99 = first(lat, "p99", "0.99")
        if p50 is not None:
            return p50, p99
    p50 = first(m, "latency_p50_ms", "p50_ms") if isinstance(m, dict) else None
    p99 = first(m, "latency_p99_ms", "p99_ms") if isinstance(m, dict) else None
    if p50 is not None:
        return p50, p99
    try:
        row = client.frame.latency(percentiles=(0.5, 0.99)).loc["latency_ms"]
        return float(row["p50"]), float(row["p99"])
    except Exception:
        return None, None
