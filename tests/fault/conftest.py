"""Fault-injection helpers: a loopback TCP proxy that can kill, half-close or freeze connections,
and log capture that fails a test on any unhandled exception."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator

import pytest


class ChaosProxy:
    """A TCP proxy on 127.0.0.1 (port 0) in its own thread and event loop.

    * :meth:`kill` aborts every proxied connection (RST to both sides: a killed socket);
    * :meth:`close_downstream` closes the client's side gracefully (FIN: from the client this is
      the server vanishing without a close frame);
    * :meth:`freeze` stops forwarding in both directions while keeping sockets open (half-open:
      the peer stops answering); :meth:`thaw` resumes forwarding.

    ``connections_accepted`` counts accepted client connections.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="chaos")
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._frozen = asyncio.Event()  # set == frozen
        self.connections_accepted = 0
        self._server: asyncio.AbstractServer | None = None
        self._thread.start()
        self.port = self._call(self._start())

    def _call(self, coro, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while self._frozen.is_set():
                    await asyncio.sleep(0.01)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            return
        pair = (c_writer, s_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(c_reader, s_writer), self._pipe(s_reader, c_writer))
        finally:
            self._pairs.discard(pair)

    async def _kill(self, graceful: bool) -> int:
        pairs = list(self._pairs)
        for c_writer, s_writer in pairs:
            for w in (c_writer, s_writer):
                with contextlib.suppress(Exception):
                    if graceful:
                        w.close()
                    else:
                        w.transport.abort()
        return len(pairs)

    def kill(self) -> int:
        """Abort (RST) every connection; return how many."""
        return int(self._call(self._kill(graceful=False)))

    def close_downstream(self) -> int:
        """Close every connection gracefully (FIN both ways); return how many."""
        return int(self._call(self._kill(graceful=True)))

    def freeze(self) -> None:
        self.loop.call_soon_threadsafe(self._frozen.set)

    def thaw(self) -> None:
        self.loop.call_soon_threadsafe(self._frozen.clear)

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def close(self) -> None:
        async def stop() -> None:
            await self._kill(graceful=False)
            if self._server is not None:
                self._server.close()

        with contextlib.suppress(Exception):
            self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


@pytest.fixture
def chaos_proxy() -> Iterator[type[ChaosProxy]]:
    made: list[ChaosProxy] = []

    class _Proxy(ChaosProxy):
        def __init__(self, host: str, port: int) -> None:
            super().__init__(host, port)
            made.append(self)

    yield _Proxy
    for p in made:
        p.close()


class LogCapture(logging.Handler):
    """Collects records of the ``wsnotebook`` and ``asyncio`` loggers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def unhandled(self) -> list[str]:
        """Records carrying a traceback at ERROR or above (an exception nobody handled)."""
        fmt = logging.Formatter()
        return [
            f"{r.name}: {r.getMessage()}\n{fmt.formatException(r.exc_info)}"
            for r in self.records
            if r.exc_info and r.exc_info[0] is not None and r.levelno >= logging.ERROR
        ]

    def text(self) -> str:
        return "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records)


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    loggers = [logging.getLogger("wsnotebook"), logging.getLogger("asyncio")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, old):
        lg.removeHandler(handler)
        lg.setLevel(level)
