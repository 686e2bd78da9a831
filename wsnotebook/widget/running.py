"""The running monitors: at most one per monitored target (keyed by ``id(target)``), plus
those asked for with ``monitor(..., new=True)`` (keyed by their own id).

Invariants: registering a monitor closes the one it replaces (re-running a cell does not leak
ticks nor widgets); a monitor unregisters only itself, never a newer one for the same target;
the first registration installs :func:`stop_all` as a shutdown hook of the background loop (once).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..runtime import Registry
from ..runtime import loop as _loop

if TYPE_CHECKING:
    from .view import Monitor

log = logging.getLogger("wsnotebook")

__all__ = ["register", "running_monitors", "stop_all", "unregister"]

_monitors: Registry[Monitor] = Registry("monitors")
_hook_lock = threading.Lock()
_hook_installed = False


def _key(mon: Monitor) -> int:
    return id(mon) if getattr(mon, "independent", False) else id(mon.target)


def register(mon: Monitor) -> None:
    """``mon`` is the monitor of its target; the previous one (if another) is closed.  A
    monitor made with ``new=True`` (``mon.independent``) is registered on its own."""
    global _hook_installed
    old = _monitors.add(_key(mon), mon)
    with _hook_lock:
        if not _hook_installed:
            _loop.add_shutdown_hook(stop_all)
            _hook_installed = True
    if old is not None:
        try:
            old.close()
        except Exception:
            log.debug("monitor: closing the replaced monitor failed", exc_info=True)


def unregister(mon: Monitor) -> None:
    _monitors.remove(_key(mon), mon)


def running_monitors() -> list[Monitor]:
    """Monitors whose tick is running (one per target at most)."""
    return _monitors.items(lambda m: m.running)


def stop_all() -> None:
    """Stop every monitor (registered at exit, and used by ``%unload_ext wsnotebook``)."""
    for m in _monitors.items():
        try:
            m.stop()
        except Exception:
            log.debug("monitor: stop failed", exc_info=True)
