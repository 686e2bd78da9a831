"""The live monitor in a real JupyterLab, checked in headless Chromium (Playwright).

JupyterLab runs on a free loopback port with a token and an isolated config/data/runtime dir (news
off).  The notebook ``monitor.ipynb`` beside this file runs ``%load_ext wsnotebook``,
``%ws serve``, ``%ws demo``, ``%ws monitor``, then starts a fake agent (a WebSocket server, as
the seed's hook utility) and posts its permission question.  After every cell has finished
(kernel idle) the status line's event count and the table's newest row must still advance, a
type filter must narrow the table, and clicking **Yes** on the question in the monitor must
answer it: the agent (in the kernel) writes what it received to ``agent_received.json``, which
must be the seed's response JSON with ``permission: true``, and the question leaves the list.
Screenshots go to ``$WSN_ARTIFACTS_DIR`` (default ``artifacts/``, ignored by git), so a run
leaves the tree clean; ``WSN_UPDATE_SCREENSHOTS=1`` also copies the monitor's
picture to the tracked ``docs/screenshots/monitor.png``.

Playwright drives Debian's ``/usr/bin/chromium`` (``playwright install`` cannot download here).
Without Chromium or Playwright the test fails when ``CI=true`` and skips elsewhere.
"""

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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NOTEBOOK = HERE / "monitor.ipynb"
CHROMIUM = os.environ.get("WSN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Playwright adds --headless itself and gives each launch() a fresh temporary profile.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# "idle" shows before the kernel is attached (toolbar still says "No Kernel"): wait for both.
KERNEL_READY_JS = """() => {
  const name = document.querySelector('.jp-NotebookPanel [data-jp-item-name="kernelName"]');
  const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  return !!name && !!ind && !/^\\s*(No Kernel)?\\s*$/.test(name.textContent)
         && ind.getAttribute('data-status') === 'idle';
}"""
READ_JS = """() => {
  const ev = document.querySelector('.wsn-status .wsn-events .wsn-v');
  const cell = document.querySelector('.wsn-table table.wsn-events tbody tr td');
  const num = s => parseInt((s || '').replace(/[^0-9]/g, ''), 10);
  return {events: ev ? num(ev.textContent) : null, newest: cell ? num(cell.textContent) : null};
}"""
ADVANCED_JS = """([e0, n0]) => {
  const ev = document.querySelector('.wsn-status .wsn-events .wsn-v');
  const cell = document.querySelector('.wsn-table table.wsn-events tbody tr td');
  const num = s => parseInt((s || '').replace(/[^0-9]/g, ''), 10);
  return !!ev && !!cell && num(ev.textContent) > e0 && num(cell.textContent) > n0;
}"""
TYPES_JS = """() => Array.from(
  document.querySelectorAll('.wsn-table table.wsn-events tbody tr td:nth-child(5)'),
  td => td.textContent.trim())"""
ONLY_TYPE_JS = """(t) => {
  const cells = Array.from(
    document.querySelectorAll('.wsn-table table.wsn-events tbody tr td:nth-child(5)'));
  return cells.length > 0 && cells.every(td => td.textContent.trim() === t);
}"""
CHART_POINTS_JS = """(n) => {
  const path = document.querySelector('.wsn-chart path.line');
  const d = path ? (path.getAttribute('d') || '') : '';
  return (d.match(/L/g) || []).length >= n;
}"""
NO_QUESTION_JS = """() => !Array.from(document.querySelectorAll('.wsn-questions .wsn-question'))
  .some(el => el.offsetParent !== null && el.textContent.includes('May I deploy'))"""
TIMEOUT_MS = 60_000  # generous: 2 busy cores; a first JupyterLab load takes ~4-6 s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, token: str, method: str, path: str) -> Any:
    req = urllib.request.Request(
        base + path, method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


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


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[SimpleNamespace]:
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    home = tmp_path / "jupyter-home"
    settings = home / "config/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
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
                    _api(base, token, "GET", "/api/status")
                    break
                except OSError:
                    if time.monotonic() - t0 > 45:
                        pytest.fail("jupyter lab did not answer in 45 s")
                    time.sleep(0.2)  # polling a server that is starting, not a timing assumption
            yield SimpleNamespace(base=base, token=token, log=log_path, proc=proc, root=root)
        finally:
            kernel_pids |= _child_pids(proc.pid)
            try:  # shut kernels down cleanly first (their atexit stops servers and ticks)
                for k in _api(base, token, "GET", "/api/kernels") or []:
                    _api(base, token, "DELETE", f"/api/kernels/{k['id']}")
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


def test_monitor_updates_live_while_kernel_idle_and_filters_narrow_the_table(
    browser_ok: None, jupyter_lab: SimpleNamespace, artifacts_dir: Path
) -> None:
    from playwright import sync_api

    lab = jupyter_lab
    console_errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        try:
            page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
            page.wait_for_function(KERNEL_READY_JS)
            # Run > Run All Cells, through the menu bar (main-menu id: runmenu:run-all)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()

            page.wait_for_function(
                "n => document.querySelectorAll("
                "'.wsn-table table.wsn-events tbody tr').length >= n",
                arg=10,
            )
            # every cell has finished: from now on only the background tick changes the widget
            page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
            page.wait_for_function(KERNEL_READY_JS)
            first = page.evaluate(READ_JS)
            assert first["events"] and first["newest"], first
            page.wait_for_function(ADVANCED_JS, arg=[first["events"], first["newest"]])
            second = page.evaluate(READ_JS)

            monitor = page.locator(".wsn-monitor").first
            monitor.scroll_into_view_if_needed()
            # the chart has drawn a few seconds of throughput before the picture is taken
            page.wait_for_function(CHART_POINTS_JS, arg=4)
            page.screenshot(path=str(artifacts_dir / "monitor_page.png"))
            shot = artifacts_dir / "monitor.png"
            monitor.screenshot(path=str(shot))

            # a filter narrows the table: pick the most common type shown
            types_before = page.evaluate(TYPES_JS)
            assert len(set(types_before)) >= 2, types_before
            chosen = max(set(types_before), key=types_before.count)
            page.locator(".wsn-filter-hook-event-type select").select_option(value=chosen)
            page.wait_for_function(ONLY_TYPE_JS, arg=chosen)
            types_after = page.evaluate(TYPES_JS)
            monitor.screenshot(path=str(artifacts_dir / "monitor_filtered.png"))
            state = page.locator(".wsn-status .wsn-state").inner_text().strip()

            # human in the loop: the agent's question is listed; answer it with Yes
            question = page.locator(".wsn-questions .wsn-question", has_text="May I deploy")
            question.wait_for()
            question.scroll_into_view_if_needed()
            monitor.screenshot(path=str(artifacts_dir / "monitor_question.png"))
            question.locator(".wsn-answer-yes").click()
            page.locator(".wsn-questions-status", has_text="answered #").wait_for()
            page.wait_for_function(NO_QUESTION_JS)
            monitor.screenshot(path=str(artifacts_dir / "monitor_answered.png"))
            received = lab.root / "agent_received.json"
            deadline = time.monotonic() + 30
            while not received.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # polling a file the kernel writes, not a timing assumption
            answer = json.loads(received.read_text())
        except Exception:
            page.screenshot(path=str(artifacts_dir / "monitor_FAILED.png"))
            print("jupyter log tail:\n", lab.log.read_text()[-3000:])
            print("browser console errors:", console_errors[-20:])
            raise
        finally:
            browser.close()

    assert second["events"] > first["events"], (first, second)
    assert second["newest"] > first["newest"], (first, second)
    assert types_after and set(types_after) == {chosen}
    assert state == "open", state
    assert answer["permission"] is True and answer["respondedBy"] == "notebook"
    assert list(answer) == ["permission", "respondedBy", "hookEvent", "respondedAt"]
    assert answer["hookEvent"]["humanInTheLoop"]["question"] == "May I deploy to staging?"
    print(f"\n[browser] screenshots in {artifacts_dir}")
    if os.environ.get("WSN_UPDATE_SCREENSHOTS") == "1":  # refresh the docs only when asked
        screenshots = REPO / "docs" / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, screenshots / "monitor.png")
    print(f"\n[browser] {first} -> {second}; filter {chosen!r}: {len(types_after)} rows")
