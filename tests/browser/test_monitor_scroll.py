"""The monitor's table during and after a fast scroll, and follow-newest, in a real JupyterLab.

A fast scroll (more than a screen of rows per frame) fills only the id and time cells of the
rows it brings, and the rest once the scroll slows or stops (monitor.js ``renderRows``). Checked
here on a 20,000-row frame whose payloads name their own id: during a scroll of ~120 rows per
frame some rows are partial and no cell ever shows another row's data; after the scroll stops
every row in view is filled with its own data.  On a live stream: scrolling away pauses
follow-newest (the rows in view stay in place while new rows arrive above, the "follow newest"
button counts them) and the button resumes it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _browser import CHROMIUM, CHROMIUM_FLAGS, KERNEL_READY_JS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TIMEOUT_MS = 90_000
FRAME_CELL = """
import time
import wsnotebook as wsn
big = wsn.EventFrame()
t0 = time.time() * 1000 - 20_000
big.extend([{"id": i, "timestamp": t0 + i, "source_app": "app", "session_id": "s",
             "hook_event_type": "PreToolUse", "payload": {"marker": f"row-{i}-end"}}
            for i in range(1, 20_001)])
wsn.monitor(big)
"""
LIVE_CELL = """
from wsnotebook.demo import start_demo
srv = wsn.serve(port=0)
cli = wsn.connect(srv.url)
cli.wait_state("open", timeout=30)
demo = start_demo(srv, rate=100, batch=5)
wsn.monitor(cli)
"""
# The rows in view of the monitor in cell k: id, text cell, whether the row is partial.
VIEW_JS = """(k) => {
  const mon = document.querySelectorAll('.jp-Notebook .jp-Cell')[k].querySelector('.wsn-mon');
  const sc = mon.querySelector('.wsn-scroll');
  const rows = Array.from(sc.querySelectorAll('.wsn-row')).filter(r => r.style.display !== 'none'
    && r.offsetTop + 22 > sc.scrollTop && r.offsetTop < sc.scrollTop + sc.clientHeight);
  rows.sort((a, b) => a.offsetTop - b.offsetTop);
  const btn = mon.querySelector('.wsn-newest');
  return {top: sc.scrollTop, newest: btn.style.display === 'none' ? null : btn.textContent,
          rows: rows.map(r => ({id: +r.dataset.id, pos: r.offsetTop / 22,
            idText: r.querySelector('.wsn-td-id').textContent,
            text: r.querySelector('.wsn-td-text').textContent,
            app: r.querySelector('.wsn-td-app').textContent}))};
}"""
# Scroll the table of cell k by `step` rows per frame for `frames` frames; each frame (after the
# monitor's own frame callback, which was queued by the scroll event) reads the rows in view.
FAST_JS = (
    """async ([k, step, frames]) => {
  const sc = document.querySelectorAll('.jp-Notebook .jp-Cell')[k].querySelector('.wsn-scroll');
  const view = ("""
    + VIEW_JS.strip()
    + """);
  const seen = [];
  for (let f = 1; f <= frames; f++) {
    sc.scrollTop = f * step * 22;
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    seen.push(view(k));
  }
  return seen;
}"""
)


def _write_notebook(root: Path, name: str, cells: list[str]) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, str(root / name))


def _view(page: Any, k: int) -> dict[str, Any]:
    out: dict[str, Any] = page.evaluate(VIEW_JS, k)
    return out


def _wait_view(page: Any, k: int, cond_js: str, arg: Any = None) -> None:
    """Wait until ``cond_js`` (a JS expression of ``v``, the VIEW_JS result, and ``arg``) holds."""
    page.wait_for_function(
        "([k, arg]) => { const v = (" + VIEW_JS.strip() + ")(k); return !!(" + cond_js + "); }",
        arg=[k, arg],
    )


def test_fast_scroll_and_follow_newest(browser_ok: None, jupyter_lab: SimpleNamespace) -> None:
    from playwright import sync_api

    lab = jupyter_lab
    _write_notebook(lab.root, "scroll.ipynb", [FRAME_CELL, LIVE_CELL, 'print("cells done")'])
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{lab.base}/lab/tree/scroll.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY_JS)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
            page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
            cell = page.locator(".jp-Notebook .jp-Cell").nth(0)
            cell.scroll_into_view_if_needed()
            _wait_view(
                page, 0, "v.rows.some(r => r.id === 20000 && r.text.includes('row-20000-end'))"
            )

            # a fast scroll: 120 rows per frame (a screen is ~20)
            seen = page.evaluate(FAST_JS, [0, 120, 40])
            partial = 0
            for frame in seen:
                for r in frame["rows"]:
                    assert r["idText"] == str(r["id"]), r  # the id cell is always its row's
                    if r["text"]:  # a filled cell shows its own row's data, never another's
                        assert f"row-{r['id']}-end" in r["text"], r
                    else:
                        partial += 1
                        assert r["app"] == "", r  # partial rows are emptied, not stale
            assert partial > 0, "a fast scroll should defer the summary cells"

            # once the scroll stops, every row in view is filled with its own data
            _wait_view(
                page,
                0,
                "v.rows.length >= 15 && v.rows.every(r =>"
                " r.text.includes('row-' + r.id + '-end') && r.app === 'app')",
            )
            final = _view(page, 0)
            ids = [r["id"] for r in final["rows"]]
            assert ids == list(range(ids[0], ids[0] - len(ids), -1)), ids  # newest first
            assert ids[0] == 20000 - round(final["top"] / 22), final["top"]

            # a slow scroll (a few rows per frame) never leaves a row partial
            slow = page.evaluate(FAST_JS, [0, 3, 10])
            assert all(r["text"] for frame in slow[1:] for r in frame["rows"]), slow[-1]

            # follow newest on a live stream: scrolling away pauses it, the button resumes it
            live = page.locator(".jp-Notebook .jp-Cell").nth(1)
            live.scroll_into_view_if_needed()
            _wait_view(page, 1, "v.rows.length >= 10")
            page.evaluate(
                "(k) => { document.querySelectorAll('.jp-Notebook .jp-Cell')[k]"
                ".querySelector('.wsn-scroll').scrollTop = 5 * 22; }",
                1,
            )
            _wait_view(page, 1, "v.newest")  # new rows arrived above: the button counts them
            held = _view(page, 1)["rows"][0]["id"]
            # "(25 new)", "(1.2k new)": wait for 20 more
            _wait_view(page, 1, "v.newest && parseFloat(v.newest.split('(')[1]) >= arg", 20)
            assert _view(page, 1)["rows"][0]["id"] == held  # the rows in view stayed in place
            live.locator(".wsn-newest").click()
            _wait_view(
                page,
                1,
                "v.top === 0 && !v.newest && v.rows.length && v.rows[0].id > arg + 20",
                held,
            )
        finally:
            browser.close()
