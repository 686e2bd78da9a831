"""Fixtures of the browser tests: a real JupyterLab on a free loopback port (token, isolated
config/data/runtime dirs, news off, widget state saved with the notebook), Chromium present,
the screenshot directory.  Playwright drives Debian's ``/usr/bin/chromium`` (``playwright
install`` cannot download here).  Without Chromium or Playwright the tests fail when
``CI=true`` and skip elsewhere."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _browser import CHROMIUM, HERE, REPO, api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_pids(pid: int) -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def browser_ok() -> None:
    """Checked before JupyterLab starts (fixtures run in argument order)."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed: pip install playwright"
    if not os.path.exists(CHROMIUM):
        problem = f"chromium not found at {CHROMIUM}: run scripts/install-chromium.sh"
    if problem:
        if os.environ.get("CI", "").lower() == "true" or os.environ.get("WSN_REQUIRE_BROWSER"):
            pytest.fail(f"browser test cannot run under CI: {problem}")
        pytest.skip(problem)


@pytest.fixture
def artifacts_dir() -> Path:
    d = Path(os.environ.get("WSN_ARTIFACTS_DIR") or REPO / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _settings(home: Path, plugin: str, name: str, value: dict[str, Any]) -> None:
    d = home / "config/lab/user-settings" / plugin
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.jupyterlab-settings").write_text(json.dumps(value))


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[SimpleNamespace]:
    root = tmp_path / "notebooks"
    root.mkdir()
    for nb in HERE.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    home = tmp_path / "jupyter-home"
    _settings(
        home,
        "@jupyterlab/apputils-extension",
        "notification",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    # widget state saved with the notebook: a reopened notebook shows the monitor's snapshot
    _settings(home, "@jupyter-widgets/jupyterlab-manager", "plugin", {"saveState": True})
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp_path / "jupyter-lab.log"
    kernel_pids: set[int] = set()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        base = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        try:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited {proc.returncode}:\n{log_path.read_text()}")
                try:
                    api(base, token, "GET", "/api/status")
                    break
                except OSError:
                    if time.monotonic() - t0 > 45:
                        pytest.fail("jupyter lab did not answer in 45 s")
                    time.sleep(0.2)  # polling a server that is starting, not a timing assumption
            yield SimpleNamespace(base=base, token=token, log=log_path, proc=proc, root=root)
        finally:
            kernel_pids |= _child_pids(proc.pid)
            try:  # shut kernels down cleanly first (their atexit stops servers and ticks)
                for k in api(base, token, "GET", "/api/kernels") or []:
                    api(base, token, "DELETE", f"/api/kernels/{k['id']}")
            except OSError:
                pass
            proc.send_signal(signal.SIGTERM)  # by PID only
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in kernel_pids:  # a kernel left behind: by PID only
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
