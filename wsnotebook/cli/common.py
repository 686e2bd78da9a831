"""What every CLI command shares: the exit codes and the Ctrl-C/SIGTERM stop signal.

Exit codes (the CLI's contract, documented in ``wsnotebook --help`` and the README): 0 success,
1 the server refused (HTTP error), 2 usage error, 3 connection failure, 130 interrupted.

:class:`StopSignal` installs its handlers only on the main thread (``signal.signal`` refuses
elsewhere; a command run from a worker thread then waits for its own end) and always restores
the previous handlers on exit, so ``main()`` called from tests leaves the process as it was.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_HTTP_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "StopSignal",
]

EXIT_OK = 0
EXIT_HTTP_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_INTERRUPTED = 130


class StopSignal:
    """Turn SIGINT/SIGTERM into an event the main thread waits on (restores handlers on exit)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def wait(self, timeout: float | None) -> bool:
        return self.event.wait(timeout)
