"""wsnotebook: turn a Jupyter kernel into a live event monitor.

Public API (everything else lives in underscore modules)::

    import wsnotebook as wsn
    server = wsn.serve(port=4000)        # background HTTP + WebSocket server, returns at once
    client = wsn.connect(server.url)     # reconnecting subscriber feeding client.frame
    frame = wsn.EventFrame()             # thread-safe, bounded, pandas-backed event store
    wsn.monitor(client)                  # ipywidgets live monitor
    %load_ext wsnotebook                 # %ws magics
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AuthError,
    ClientError,
    ConfigError,
    EventValidationError,
    LimitExceeded,
    PortInUseError,
    ProtocolError,
    ServerError,
    StoreError,
    WsnError,
)
from .frame import EventFrame

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ClientError",
    "ConfigError",
    "EventFrame",
    "EventValidationError",
    "LimitExceeded",
    "PortInUseError",
    "ProtocolError",
    "ServerError",
    "StoreError",
    "WsnError",
    "__version__",
    "connect",
    "load_ipython_extension",
    "monitor",
    "serve",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    from ._client import connect
    from ._magics import load_ipython_extension, unload_ipython_extension
    from ._server import serve
    from ._widgets import monitor

# Heavy modules (aiohttp, websockets, ipywidgets) load on first use, so `import wsnotebook` and
# `%load_ext wsnotebook` stay fast; the names resolve to the real functions (signatures, docs).
_LAZY = {
    "serve": "._server",
    "connect": "._client",
    "monitor": "._widgets",
    "load_ipython_extension": "._magics",
    "unload_ipython_extension": "._magics",
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
