"""The runtime: one background event loop per process (``loop``), the CPU budget that keeps the
kernel responsive (``budget``: sans-I/O token bucket), and the registry of running objects."""

from __future__ import annotations

from .budget import CpuBudget
from .gcpause import gc_paused
from .registry import Registry

__all__ = ["CpuBudget", "Registry", "gc_paused"]
