"""What the browser tests share besides fixtures (``conftest.py``): paths, Chromium's
location and flags, the "kernel ready" probe, the Jupyter REST helper, a call of
``monitor.js`` alone in a blank page (:func:`with_monitor_module`).  A module of its own,
not ``conftest``: ``from conftest import ...`` picks whichever ``conftest`` module was imported
first (``pytest tests/unit tests/browser`` found ``tests/unit/widget/conftest.py``)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
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
# True once the open notebook's kernel is named and idle (JupyterLab's status bar).
KERNEL_READY_JS = """() => {
  const name = document.querySelector('.jp-NotebookPanel [data-jp-item-name="kernelName"]');
  const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  return !!name && !!ind && !/^\\s*(No Kernel)?\\s*$/.test(name.textContent)
         && ind.getAttribute('data-status') === 'idle';
}"""


def api(base: str, token: str, method: str, path: str) -> Any:
    req = urllib.request.Request(
        base + path, method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


#: ``monitor.js`` as anywidget loads it (a blob URL), then ``body(m, arg)`` with the module ``m``.
_MODULE_JS = """async ([src, body, arg]) => {
  const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
  const m = await import(url);
  return (eval(body))(m, arg);
}"""


def with_monitor_module(body_js: str, arg: Any = None) -> Any:
    """``body_js`` (a JS function ``(m, arg) => value``, ``m``: the ``monitor.js`` module) run in
    a blank page of a fresh headless Chromium; its value.  No JupyterLab."""
    from playwright import sync_api

    src = (REPO / "wsnotebook/widget/static/monitor.js").read_text()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_content("<html><body></body></html>")
            return page.evaluate(_MODULE_JS, [src, body_js, arg])
        finally:
            browser.close()
