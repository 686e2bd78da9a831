"""Load-test helpers: a wsnotebook server in a child process (so its RSS is its own and it gets
its own core), and a raised file-descriptor limit."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

_CHILD = r"""
import json, sys
import wsnotebook as wsn
server = wsn.serve(**json.loads(sys.argv[1]))
print(json.dumps({"port": server.port}), flush=True)
sys.stdin.read()  # run until the parent closes our stdin
print(json.dumps(server.metrics(), default=str), flush=True)
server.stop()
"""


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def stop(self) -> dict[str, Any]:
        """Stop the child; return its final ``metrics()``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.wait(30)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


def _raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (capped by the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@pytest.fixture
def raise_nofile() -> Callable[[int], int]:
    return _raise_nofile


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**options: Any) -> ServerProcess:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps({"port": 0, **options})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(10)
            raise RuntimeError(f"server process failed to start (rc={proc.returncode})")
        sp = ServerProcess(proc, int(json.loads(line)["port"]))
        started.append(sp)
        return sp

    yield start
    for sp in started:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait(10)
