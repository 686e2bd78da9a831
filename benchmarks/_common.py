"""Small helpers shared by the benchmarks: repetition with medians, RSS, tables, JSON results.

Every benchmark reports the median of >= 3 repetitions beside a baseline measured in the same
run, prints a table and writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def median_of(fn: Callable[[], float], reps: int = 3) -> tuple[float, list[float]]:
    """Run ``fn`` (returns one measurement) ``reps`` times (>= 3); return (median, all values)."""
    values = [float(fn()) for _ in range(max(3, reps))]
    return statistics.median(values), values


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock: list[Callable[[], float]] = [time.perf_counter]


def set_clock(name: str) -> None:
    """Measure with ``"wall"`` time (default) or this process's ``"cpu"`` time.  CPU time keeps
    single-threaded figures honest on a machine that other jobs are loading."""
    _clock[0] = CLOCKS[name]


def clock() -> float:
    """The selected clock, in seconds."""
    return _clock[0]()


def timed(fn: Callable[[], Any], *, collect: bool = False) -> float:
    """Seconds ``fn()`` took on the selected clock; ``collect`` runs a GC first so earlier
    garbage is not billed (skip it inside loops: a full GC is O(live objects))."""
    if collect:
        gc.collect()
    start = clock()
    fn()
    return clock() - start


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def fmt(value: Any) -> str:
    """Human formatting for table cells: thousands separators, 3 significant decimals."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Print (and return) rows of dicts as an aligned text table."""
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())
    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append(
            "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
        )
    text = "\n".join(lines)
    print(text)
    return text


def environment() -> dict[str, Any]:
    """Where the numbers came from."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (with the environment) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {"benchmark": name, "environment": environment(), **payload}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path
