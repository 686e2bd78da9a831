"""wsnotebook: turn a Jupyter kernel into a live event monitor.

Public API (everything else is internal: see the README's "How it works" for the layout)::

    import wsnotebook as wsn
    server = wsn.serve(port=4000)        # background HTTP + WebSocket server, returns at once
    client = wsn.connect(server.url)     # reconnecting subscriber feeding client.frame
    frame = wsn.EventFrame()             # thread-safe, bounded, pandas-backed event store
    wsn.monitor(client)                  # live monitor widget (anywidget: grid, chart)
    wsn.replay(to=server)                # replay a recording (default: the shipped session)
    %load_ext wsnotebook                 # %ws magics
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AnswerError,
    AuthError,
    ClientError,
    ConfigError,
    ConnectionClosedError,
    EventValidationError,
    LimitExceeded,
    LoopThreadError,
    PortInUseError,
    ProtocolError,
    RecordingError,
    ServerError,
    StoreError,
    WaitTimeout,
    WsnError,
)

__all__ = [
    "AnswerError",
    "AuthError",
    "ClientError",
    "ConfigError",
    "ConnectionClosedError",
    "EventFrame",
    "EventValidationError",
    "LimitExceeded",
    "LoopThreadError",
    "PortInUseError",
    "ProtocolError",
    "RecordingError",
    "ServerError",
    "StoreError",
    "WaitTimeout",
    "WsnError",
    "__version__",
    "budget_stats",
    "connect",
    "load_ipython_extension",
    "monitor",
    "replay",
    "serve",
    "set_cpu_budget",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    from .client import connect
    from .frame import EventFrame
    from .magics import load_ipython_extension, unload_ipython_extension
    from .recording import replay
    from .runtime.loop import budget_stats, set_cpu_budget
    from .server import serve
    from .widget import monitor

# Heavy modules (aiohttp, websockets, ipywidgets) load on first use, so `import wsnotebook` and
# `%load_ext wsnotebook` stay fast; the names resolve to the real functions (signatures, docs).
_LAZY = {
    "EventFrame": ".frame",
    "serve": ".server",
    "connect": ".client",
    "monitor": ".widget",
    "replay": ".recording",
    "load_ipython_extension": ".magics",
    "unload_ipython_extension": ".magics",
    "set_cpu_budget": ".runtime.loop",
    "budget_stats": ".runtime.loop",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wsnotebook' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
