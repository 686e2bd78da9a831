"""The one exception hierarchy of wsnotebook.

Every error the package raises derives from :class:`WsnError`, so ``except wsnotebook.WsnError``
catches all of them.  Where a builtin meaning fits, the error derives from that builtin too, so
``except ValueError`` / ``except TimeoutError`` code keeps working::

    WsnError
    ├── EventValidationError (ValueError)   an event is malformed; .field names the field
    ├── LimitExceeded (ValueError)          a size/count limit; .limit .value .bound
    ├── ProtocolError (ValueError)          a wire message is not valid protocol
    ├── ConfigError (ValueError)            an option or argument is out of bounds / conflicts
    ├── LoopThreadError (RuntimeError)      a blocking call made on the background loop thread
    ├── WaitTimeout (TimeoutError)          a blocking wait (wait_for, run, stop) ran out of time
    ├── RecordingError (ValueError)         not a recording, a truncated one, an unwritable --out
    ├── AnswerError (ValueError)            a HITL answer refused; .status (HTTP code) .event_id
    ├── ServerError                         the server could not start or stop
    │   ├── PortInUseError (OSError)        .host .port
    │   └── StoreError                      the event store failed (path, corruption, disk)
    └── ClientError                         retrying cannot fix it (bad URL, refused)
        ├── ConnectionClosedError           the client is closed
        └── AuthError                       401/403 or close code 1008
  Background tasks (server handlers, client loops, widget ticks) never raise
into the kernel: they log on the ``wsnotebook`` logger, count the error in ``metrics()``, and close
connections with a documented code instead.
"""

from __future__ import annotations

__all__ = [
    "WsnError",
    "EventValidationError",
    "LimitExceeded",
    "ProtocolError",
    "ServerError",
    "PortInUseError",
    "StoreError",
    "ConfigError",
    "LoopThreadError",
    "WaitTimeout",
    "ClientError",
    "ConnectionClosedError",
    "AuthError",
    "RecordingError",
    "AnswerError",
]


class WsnError(Exception):
    """Base class of every wsnotebook error."""


class EventValidationError(WsnError, ValueError):
    """An event failed validation.

    The message names the field and what was wrong, e.g.
    ``"payload: expected object, got string"``.  ``field`` holds the field name (``""`` when the
    whole event is wrong, e.g. not a JSON object).
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class LimitExceeded(WsnError, ValueError):
    """A size or count limit was exceeded (event bytes, events per batch, message bytes...)."""

    def __init__(self, message: str, *, limit: str = "", value: int = 0, bound: int = 0) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.bound = bound


class ProtocolError(WsnError, ValueError):
    """A wire message could not be decoded or is not a valid protocol message."""


class ConfigError(WsnError, ValueError):
    """An option given to ``serve()``/``connect()``/``monitor()`` is invalid or conflicts."""


class LoopThreadError(WsnError, RuntimeError):
    """A blocking call (``stop()``, ``publish()``, ``wait_for()``...) was made from the
    background loop thread, where it would deadlock; use the ``*_async`` variant there."""


class WaitTimeout(WsnError, TimeoutError):
    """A blocking wait ran out of time (``client.wait_for``, a stop or start that did not
    finish).  Nothing was lost: the operation may still complete in the background."""


class RecordingError(WsnError, ValueError):
    """A recording cannot be read or written: the path is not a recording (or is truncated),
    or the output cannot be created.  The message is one line naming the path and the cause."""


class ServerError(WsnError):
    """The server could not start or stop."""


class PortInUseError(ServerError, OSError):
    """The requested port is already bound by another process (or another server)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is already in use; choose another port or stop the other server"
        )
        self.host = host
        self.port = port


class AnswerError(WsnError, ValueError):
    """An answer to a human-in-the-loop question was refused: unknown event (``status`` 404),
    not a question / already answered / timed out / being answered (409), an answer that does
    not fit the question (400), too large (413), or the store cannot record it (501)."""

    def __init__(self, message: str, *, status: int = 409, event_id: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.event_id = event_id


class StoreError(ServerError):
    """The event store failed (unwritable path, corrupted database, disk full...)."""


class ClientError(WsnError):
    """The client stopped for a reason that retrying cannot fix (bad URL, 401/403, close 1008)."""


class ConnectionClosedError(ClientError):
    """The client is closed; the operation needs an open client."""


class AuthError(ClientError):
    """The server refused the credentials (HTTP 401/403 or close code 1008)."""
