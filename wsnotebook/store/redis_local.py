"""A throwaway ``redis-server`` for demos, notebooks, tests and benchmarks (not for production).

:class:`LocalRedis` starts Debian's ``redis-server`` (``make setup`` installs it) on a free
loopback port in a temporary directory, with AOF on and ``appendfsync always`` (an acknowledged
write is on disk), no RDB snapshots, and can stop it, SIGKILL it and start it again on the same
port and directory (the AOF is replayed: what was acknowledged is back).

Bounds: every wait (start, ready, stop) gives up after ``timeout`` seconds (default 30) with a
:class:`~wsnotebook.errors.ServerError`.  On Linux the server gets SIGTERM when the thread that
started it ends (``PR_SET_PDEATHSIG``: a killed test run or kernel leaves no ``redis-server``
behind; start it from a thread that lives as long as you need it); elsewhere call :meth:`stop`
or :meth:`close`, or use it as a context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from types import TracebackType

from ..errors import ServerError

__all__ = ["LocalRedis", "redis_server_path"]


def redis_server_path() -> str | None:
    """Where ``redis-server`` is (``None``: not installed; ``make setup`` installs it)."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.path.exists(p)),
        None,
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """In the child: SIGTERM when the parent (thread) dies (Linux ``prctl``; a no-op elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRedis:
    """One ``redis-server`` subprocess on 127.0.0.1 (see the module docstring).

    ``password``: ``requirepass`` (the URL then carries it); ``port=0`` picks a free one;
    ``tls=(certfile, keyfile, cafile)``: TLS only (``rediss://`` URLs trusting ``cafile``);
    ``appendfsync``: ``always`` (default: fsync before every reply) or ``everysec``."""

    def __init__(
        self,
        *,
        port: int = 0,
        password: str | None = None,
        directory: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        tls: tuple[str, str, str] | None = None,
        appendfsync: str = "always",
    ) -> None:
        exe = redis_server_path()
        if exe is None:
            raise ServerError("redis-server is not installed (make setup installs it)")
        self.exe = exe
        self.port = port or _free_port()
        self.password = password
        self.tls = tls
        if appendfsync not in ("always", "everysec", "no"):
            raise ServerError(f"appendfsync must be always, everysec or no, got {appendfsync!r}")
        self.appendfsync = appendfsync
        self.timeout = timeout
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="wsn-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0`` (add ``?stream=NAME`` for a store)."""
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def store_url(self, stream: str = "events") -> str:
        """:attr:`url` with ``?stream=`` (and ``ssl_ca_certs=`` with TLS)."""
        query = {"stream": stream, **({"ssl_ca_certs": self.tls[2]} if self.tls else {})}
        return f"{self.url}?{urllib.parse.urlencode(query)}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalRedis 127.0.0.1:{self.port} {state} dir={self.dir}>"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the server (again) on the same port and directory; returns once it answers
        PING (after replaying its AOF)."""
        if self.running:
            return
        args = [
            self.exe,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            cert, key, ca = self.tls
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca]
            args += ["--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        ping = b"PING\r\n"
        if self.password:
            ping = b"AUTH %b\r\nPING\r\n" % self.password.encode()
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise ServerError(f"redis-server exited at start (see {self.dir / 'redis.log'})")
            with contextlib.suppress(OSError), self._connect() as s:
                s.sendall(ping)
                if b"+PONG" in s.recv(256):
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"redis-server did not answer within {self.timeout} s")
            time.sleep(0.02)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
        if not self.tls:
            return sock
        ctx = ssl.create_default_context(cafile=self.tls[2])
        ctx.check_hostname = False
        return ctx.wrap_socket(sock)

    def kill(self) -> None:
        """SIGKILL the server (what was acknowledged is in the AOF, fsynced)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(self.timeout)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.timeout)

    def restart(self, *, kill: bool = True) -> None:
        """Kill (or stop) and start again on the same port and directory."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory (when this object made it)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
