"""The runtime: one background event loop per process (``loop``), the CPU budget that keeps the
kernel responsive (``budget``: sans-I/O token bucket), the registry of running objects, and
rate-limited logging for lines a remote party can trigger (``logthrottle``)."""

from __future__ import annotations

from .budget import CpuBudget
from .gcpause import gc_paused
from .logthrottle import LogThrottle, ThrottledLog
from .registry import Registry

__all__ = ["CpuBudget", "LogThrottle", "Registry", "ThrottledLog", "gc_paused"]
