"""The live monitor in a real JupyterLab, checked in headless Chromium (Playwright).

``monitor.ipynb`` (beside this file) runs ``%ws serve``, ``%ws demo``, ``%ws monitor``, a fake
agent that asks a permission question, the monitor inside a ``VBox``, a monitor of a client whose
URL refuses connections and a monitor of a 100,000-row frame.  After every cell has finished
(kernel idle) the test checks, with a screenshot of each: rows arriving live; sort by a column;
a detail pane; a type picker; a filter by a zoomed time range (wheel zoom, then a brush on the
chart); **Yes** on the question reaches the agent (the seed's response JSON); the monitor inside
a VBox; the refused URL's reason; 100k rows scrolled to the end (scroll frames and long tasks
are printed, not asserted); then ``%ws stop all`` typed into the last cell makes the monitors
say so.  ``snapshot.ipynb``: saved with its widget state, closed and reopened, the monitor shows
its snapshot (table and chart image).

Screenshots go to ``$WSN_ARTIFACTS_DIR`` (default ``artifacts/``, ignored by git);
``WSN_UPDATE_SCREENSHOTS=1`` also copies them to the tracked ``docs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _browser import CHROMIUM, CHROMIUM_FLAGS, KERNEL_READY_JS, REPO, api

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TIMEOUT_MS = 90_000  # generous: 2 busy cores; a first JupyterLab load takes ~4-6 s
# What the monitor in cell k shows: status, visible rows (top first), empty text, range label.
READ_JS = """(k) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[k];
  const mon = cell && cell.querySelector('.wsn-mon');
  if (!mon) return null;
  const rows = Array.from(mon.querySelectorAll('.wsn-scroll .wsn-row'))
    .filter(r => r.style.display !== 'none');
  rows.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
  const sc = mon.querySelector('.wsn-scroll');
  const st = mon.querySelector('.wsn-status');
  const inView = rows.filter(r => parseFloat(r.style.top) >= sc.scrollTop - 1
                                  && parseFloat(r.style.top) < sc.scrollTop + sc.clientHeight);
  return {state: st.dataset.state, events: +st.dataset.events, status: st.textContent,
          rows: inView.map(r => ({id: +r.dataset.id,
                                  cells: Array.from(r.children, c => c.textContent)})),
          empty: mon.querySelector('.wsn-empty').textContent,
          range: mon.querySelector('.wsn-range').textContent,
          top: sc.scrollTop,
          searchBad: mon.querySelector('.wsn-search').classList.contains('wsn-bad'),
          notice: mon.querySelector('.wsn-notice').textContent,
          stoppedButtons: mon.querySelector('.wsn-pause').disabled
                          && mon.querySelector('.wsn-clear').disabled,
          detail: (mon.querySelector('.wsn-detail .wsn-payload') || {}).textContent || null,
          hits: Array.from(mon.querySelectorAll('.wsn-detail mark.wsn-hit'), m => m.textContent),
          detailId: +((mon.querySelector('.wsn-detail-title') || {}).textContent || '').slice(6),
          detailShown: mon.querySelector('.wsn-detail').style.display !== 'none'};
}"""
# Scroll a monitor's table through its rows for ~2 s, counting frames and long tasks.
SCROLL_JS = """async (k) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[k];
  const sc = cell.querySelector('.wsn-mon .wsn-scroll');
  const long = [];
  const obs = new PerformanceObserver(l => long.push(...l.getEntries().map(e => e.duration)));
  try { obs.observe({entryTypes: ['longtask']}); } catch (e) {}
  let frames = 0; const t0 = performance.now(); const end = sc.scrollHeight - sc.clientHeight;
  await new Promise(done => {
    const step = () => {
      const t = performance.now() - t0; frames++;
      sc.scrollTop = Math.min(end, end * t / 2000);
      if (t < 2000) requestAnimationFrame(step); else done();
    };
    requestAnimationFrame(step);
  });
  sc.scrollTop = end;
  obs.disconnect();
  return {fps: frames / ((performance.now() - t0) / 1000), long_tasks: long.length,
          longest_ms: long.length ? Math.max(...long) : 0};
}"""
MAIN, VBOX, REFUSED, BIG, LAST = 4, 6, 7, 8, 10  # cell indices in monitor.ipynb
# The swim lanes' bar colours (saturated pixels right of the chart's left edge, 44 px) appear
# nowhere left of it, in the lane labels' column: the bars are clipped to the plot area, lined
# up with the chart, and each label sits on a plate (the old lanes drew the second holding the
# window's start left of the edge, under the label's text).
LANES_CLIPPED_JS = """(c) => {
  const cv = c.querySelector('canvas.wsn-lanes');
  if (!cv || !cv.height) return true;
  const dpr = window.devicePixelRatio || 1, edge = Math.floor(44 * dpr);
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  const bars = new Set(), left = new Set();
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    if (d[i + 3] < 255 || Math.max(r, g, b) - Math.min(r, g, b) < 60) continue;
    ((i / 4) % cv.width < edge ? left : bars).add((r << 16) | (g << 8) | b);
  }
  return bars.size > 0 && ![...left].some((x) => bars.has(x));
}"""


def _open(page: Any, lab: SimpleNamespace, name: str) -> None:
    page.goto(f"{lab.base}/lab/tree/{name}?token={lab.token}")
    page.wait_for_function(KERNEL_READY_JS)


def _run_all(page: Any) -> None:
    # Run > Run All Cells, through the menu bar (main-menu id: runmenu:run-all)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()


def _read(page: Any, k: int) -> dict[str, Any]:
    out: dict[str, Any] = page.evaluate(READ_JS, k)
    return out


def _shot(page: Any, k: int, path: Path) -> None:
    mon = page.locator(".jp-Notebook .jp-Cell").nth(k).locator(".wsn-mon").first
    mon.scroll_into_view_if_needed()
    mon.screenshot(path=str(path))


def _wait(page: Any, k: int, predicate_js: str, arg: Any = None) -> None:
    """Wait until ``predicate_js`` (a JS function of the READ_JS result and ``arg``) holds."""
    page.wait_for_function(
        f"([k, arg]) => {{ const r = ({READ_JS})(k); return !!r && ({predicate_js})(r, arg); }}",
        arg=[k, arg],
    )


def _charts_drawn(page: Any, k: int, more: int) -> None:
    """Wait until the monitor of cell ``k`` has drawn its chart ``more`` more times."""
    js = "(k) => +document.querySelectorAll('.jp-Notebook .jp-Cell')[k]"
    js += ".querySelector('.wsn-mon').dataset.charts || 0"
    start = page.evaluate(js, k)
    page.wait_for_function(f"([k, n]) => ({js})(k) >= n", arg=[k, start + more])


def test_the_monitor_in_jupyterlab(
    browser_ok: None, jupyter_lab: SimpleNamespace, artifacts_dir: Path
) -> None:
    from playwright import sync_api

    lab = jupyter_lab
    console_errors: list[str] = []
    shots: list[Path] = []

    def shot(k: int, name: str) -> None:
        path = artifacts_dir / name
        _shot(page, k, path)
        shots.append(path)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        try:
            _open(page, lab, "monitor.ipynb")
            _run_all(page)
            page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
            page.wait_for_function(KERNEL_READY_JS)

            # 1. rows arrive live while the kernel is idle
            _wait(page, MAIN, "r => r.rows.length >= 10 && r.state === 'open'")
            first = _read(page, MAIN)
            _wait(page, MAIN, "(r, a) => r.rows[0].id > a[0] && r.events > a[1]",
                  [first["rows"][0]["id"], first["events"]])  # fmt: skip
            second = _read(page, MAIN)
            _charts_drawn(page, MAIN, 8)  # a few seconds of chart before the picture
            shot(MAIN, "monitor.png")

            # 2. sort by a column (type), then back to newest first
            cell = page.locator(".jp-Notebook .jp-Cell").nth(MAIN)
            cell.locator(".wsn-th-type").click()
            _wait(page, MAIN, "r => r.rows.length > 3 && r.rows.every((x, i, a) => "
                  "!i || a[i - 1].cells[4] <= x.cells[4])")  # fmt: skip
            sorted_types = [x["cells"][4] for x in _read(page, MAIN)["rows"]]
            shot(MAIN, "monitor_sorted.png")
            cell.locator(".wsn-th-id").click()  # newest first again
            # the columns menu hides and shows a column (header and rows); opening it moves
            # nothing in the toolbar
            where = "c => c.querySelector('.wsn-pause').getBoundingClientRect().left"
            pause_x = cell.evaluate(where)
            cell.locator(".wsn-columns").click()
            assert cell.evaluate(where) == pause_x
            cell.locator(".wsn-column-menu label", has_text="session").locator("input").uncheck()
            page.wait_for_function(
                "c => !c.querySelector('.wsn-th-session')"
                " && !c.querySelector('.wsn-scroll .wsn-row .wsn-td-session')"
                " && !!c.querySelector('.wsn-scroll .wsn-row .wsn-td-type')",
                arg=cell.element_handle(),
            )
            cell.locator(".wsn-column-menu label", has_text="session").locator("input").check()
            cell.locator(".wsn-th-session").wait_for()
            page.keyboard.press("Escape")  # closes the menu
            cell.locator(".wsn-column-menu").wait_for(state="detached")
            _wait(page, MAIN, "r => r.rows.every((x, i, a) => !i || a[i - 1].id > x.id)")

            # 3. a row's summary cell holds what its width shows; hovered, its tooltip is the
            # row's whole text (set on hover, not on every refill)
            text_td = cell.locator(".wsn-scroll .wsn-row .wsn-td-text").first
            text_td.hover()
            page.wait_for_function("td => !!td.title", arg=text_td.element_handle())
            shown, full = text_td.evaluate("td => [td.textContent, td.title]")
            assert full.startswith(shown.rstrip("…")) and len(shown) <= len(full) + 1, (shown, full)
            # the row's text: its summary, or its payload head stripped in the browser
            assert len(full) <= 200 and not full.startswith('{"session_id"'), full
            # a detail pane with the pretty-printed payload
            # (clicked where a user would, on its id: clicking the middle of a row wider than
            # the table would scroll the rows sideways first)
            cell.locator(".wsn-scroll .wsn-row").first.click(position={"x": 40, "y": 10})
            _wait(page, MAIN, "r => !!r.detail && r.detail.includes('{')")
            detail = _read(page, MAIN)["detail"]
            shot(MAIN, "monitor_detail.png")
            # rows scrolled sideways (the detail pane leaves the table narrower than its
            # columns): the header above them follows, column by column
            cell.locator(".wsn-scroll").evaluate("s => { s.scrollLeft = 150; }")
            page.wait_for_function(
                "c => { if (!c.querySelector('.wsn-scroll').scrollLeft) return false;"
                " const th = c.querySelector('.wsn-th-app').getBoundingClientRect();"
                " const td = c.querySelector('.wsn-scroll .wsn-row .wsn-td-app')"
                ".getBoundingClientRect(); return Math.abs(th.left - td.left) < 1.5; }",
                arg=cell.element_handle(),
            )
            cell.locator(".wsn-scroll").evaluate("s => { s.scrollLeft = 0; }")
            # a narrow window: the detail pane goes under the table, which keeps its width
            page.set_viewport_size({"width": 820, "height": 1100})
            page.wait_for_function(
                "c => { const t = c.querySelector('.wsn-table').getBoundingClientRect();"
                " const d = c.querySelector('.wsn-detail').getBoundingClientRect();"
                " return t.width >= 300 && d.top >= t.bottom - 1; }",
                arg=cell.element_handle(),
            )
            page.set_viewport_size({"width": 1500, "height": 1100})
            cell.locator(".wsn-detail-close").click()

            # a regex that does not compile: the box is marked, the message shown once, and the
            # table keeps what it showed (not every row, as if everything matched)
            cell.locator(".wsn-search").fill("re:(")
            _wait(page, MAIN, "r => r.searchBad && r.notice.startsWith('bad regex')"
                  " && r.rows.length > 0 && !r.status.includes('bad regex')")  # fmt: skip
            cell.locator(".wsn-search").fill("")
            _wait(page, MAIN, "r => !r.searchBad && r.notice === ''")

            # a search's matches are marked in the detail pane: the filter searches the compact
            # payload text ('"tool_name":"'), the pane shows it pretty-printed ('"tool_name": "')
            cell.locator(".wsn-search").fill('"tool_name":"')
            tools = "r.rows.every(x => x.cells[4].includes('Tool'))"  # Pre/PostToolUse only
            # applied (after the box's 250 ms pause): a filter change shows the newest rows,
            # at the top, and a screenful of rows all match (a few rows drawn mid-scroll could
            # all be tool events by chance)
            _wait(page, MAIN, f"r => r.top === 0 && r.rows.length >= 10 && {tools}")
            # (a row in view, by its id: rows off screen keep their elements)
            top_id = _read(page, MAIN)["rows"][0]["id"]
            row = cell.locator(f'.wsn-scroll .wsn-row[data-id="{top_id}"]')
            row.click(position={"x": 40, "y": 10})
            _wait(page, MAIN, "(r, id) => r.detailId === id && r.hits.length > 0", top_id)
            hits = _read(page, MAIN)["hits"]
            shot(MAIN, "monitor_search_hit.png")
            cell.locator(".wsn-detail-close").click()
            cell.locator(".wsn-search").fill("")
            # every row again, drawn whole (a filter change jumps to the newest rows: for 100 ms
            # they show only their id and time, as in a fast scroll)
            whole = "r.rows.length > 0 && r.rows.every(x => x.cells[4])"
            _wait(page, MAIN, f"r => {whole} && !{tools}")

            # a click while the rows move under the pointer (following the newest rows, they
            # move down on every tick): the row under the button going down is the one chosen
            # (it was lost when the button came up over another row)
            moving_id = _read(page, MAIN)["rows"][2]["id"]
            moving = cell.locator(f'.wsn-scroll .wsn-row[data-id="{moving_id}"]')
            top = moving.evaluate("e => e.style.top")
            mbox = moving.bounding_box()
            assert mbox is not None
            page.mouse.move(mbox["x"] + 40, mbox["y"] + 10)
            page.mouse.down()
            page.wait_for_function(
                "([e, top]) => e.style.top !== top", arg=[moving.element_handle(), top]
            )
            page.mouse.up()
            _wait(page, MAIN, "(r, id) => r.detailId === id", moving_id)
            cell.locator(".wsn-detail-close").click()
            # a drag from one row to another (selecting text across rows) opens nothing (the
            # table stays put: choosing a row stopped it following the newest rows)
            mbox = moving.bounding_box()
            assert mbox is not None
            page.mouse.move(mbox["x"] + 40, mbox["y"] + 10)
            page.mouse.down()
            page.mouse.move(mbox["x"] + 160, mbox["y"] + 10 + 3 * mbox["height"], steps=4)
            page.mouse.up()
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => done()))")
            dragged = _read(page, MAIN)["detailShown"]

            # 4. a type picker (searchable list) narrows the table
            types = [x["cells"][4] for x in _read(page, MAIN)["rows"]]
            chosen = max(set(types), key=types.count)
            cell.locator(".wsn-picker-type .wsn-pick").click()
            cell.locator(".wsn-pop input").first.fill(chosen[:4])
            cell.locator(".wsn-pop label", has_text=chosen).first.locator("input").check()
            _wait(page, MAIN, "(r, t) => r.rows.length > 0 && r.rows.every(x => x.cells[4] === t)",
                  chosen)  # fmt: skip
            shot(MAIN, "monitor_filtered.png")
            cell.locator(".wsn-pop button", has_text="all").click()
            page.mouse.click(5, 5)  # closes the picker

            # the chart by type: stacked bands (Pre/PostToolUse, equal in count, drew one line
            # over the other), listed in the legend from the top band down under the total
            cell.locator(".wsn-split").click()
            _charts_drawn(page, MAIN, 1)
            legend = cell.locator(".wsn-legend span").all_inner_texts()
            shot(MAIN, "monitor_by_type.png")
            cell.locator(".wsn-split").click()

            # 5. zoom the chart, brush a time range: the table shows that range only
            cell.locator(".wsn-window-all").click()  # the whole capture on the chart
            canvas = cell.locator("canvas.wsn-chart")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            assert box is not None
            cx, cy = box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2
            page.mouse.move(cx, cy)
            page.mouse.wheel(0, -100)  # zoom in around the cursor
            page.mouse.move(box["x"] + box["width"] * 0.35, cy)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.75, cy, steps=5)
            page.mouse.up()
            _wait(
                page,
                MAIN,
                "r => { if (!r.range.startsWith('time ') || !r.rows.length) return false;"
                " const [lo, hi] = r.range.slice(5).split(' – ');"
                " return r.rows.every(x => lo <= x.cells[1] && x.cells[1] <= hi); }",
            )
            ranged = _read(page, MAIN)
            shot(MAIN, "monitor_time_range.png")
            # zoomed in, the swim lanes' bars stay inside the chart's plot area and their labels
            # readable (LANES_CLIPPED_JS)
            page.wait_for_function(LANES_CLIPPED_JS, arg=cell.element_handle())
            # scrolled down inside the range, then "clear range": the label goes, and the
            # table shows the newest rows again, following (not the old pixel offset)
            cell.locator(".wsn-scroll").evaluate("s => { s.scrollTop = 60; }")
            _wait(page, MAIN, "r => r.top === 60")
            cell.locator(".wsn-range-clear").click()
            _wait(page, MAIN, "r => r.range === '' && r.top === 0 && r.rows.length > 0")
            canvas.dblclick()  # the zoom reset by double-click, too

            # 6. human in the loop: Yes on the agent's question reaches the agent
            question = cell.locator(".wsn-questions .wsn-question", has_text="May I deploy")
            question.wait_for()
            question.locator(".wsn-answer-yes").click()
            cell.locator(".wsn-questions-status", has_text="answered #").wait_for()
            shot(MAIN, "monitor_answered.png")
            received = lab.root / "agent_received.json"
            deadline = time.monotonic() + 30
            while not received.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # polling a file the kernel writes, not a timing assumption
            answer = json.loads(received.read_text())

            # 7. inside a VBox: a second view of the same monitor
            _wait(page, VBOX, "r => r.rows.length >= 5")
            vbox = page.locator(".jp-Notebook .jp-Cell").nth(VBOX).locator(".jp-OutputArea")
            vbox.first.scroll_into_view_if_needed()
            vbox.first.screenshot(path=str(artifacts_dir / "monitor_vbox.png"))
            shots.append(artifacts_dir / "monitor_vbox.png")

            # 8. a refused URL: the reason, not just "reconnecting"
            _wait(page, REFUSED, "r => r.status.includes('connection refused')")
            refused = _read(page, REFUSED)
            shot(REFUSED, "monitor_refused.png")

            # 9. 100,000 rows in the window, scrolled to the end (the oldest row, id 1)
            _wait(page, BIG, "r => r.status.includes('100,000 rows')")
            page.locator(".jp-Notebook .jp-Cell").nth(BIG).scroll_into_view_if_needed()
            scroll = page.evaluate(SCROLL_JS, BIG)
            _wait(page, BIG, "r => r.rows.some(x => x.id === 1)")
            shot(BIG, "monitor_100k_end.png")

            # 10. %ws stop all, typed into the last cell: the monitors say so
            last = page.locator(".jp-Notebook .jp-Cell").nth(LAST)
            last.scroll_into_view_if_needed()
            last.locator(".cm-content").click()
            page.keyboard.type("%ws stop all")
            page.keyboard.press("Shift+Enter")
            _wait(page, MAIN, "r => r.state === 'stopped'")
            _wait(page, REFUSED, "r => r.state === 'stopped'")
            # the stopped view holds every row its status counts, and says pause and clear do
            # nothing now (the status is spans: "window1,234 rows" as text)
            held = "r => r.status.includes('window' + r.events.toLocaleString() + ' rows')"
            _wait(page, MAIN, f"r => r.stoppedButtons && ({held})(r)")
            stopped = _read(page, MAIN)
            shot(MAIN, "monitor_stopped.png")
        except Exception:
            page.screenshot(path=str(artifacts_dir / "monitor_FAILED.png"))
            print("jupyter log tail:\n", lab.log.read_text()[-3000:])
            print("browser console errors:", console_errors[-20:])
            try:  # what the main monitor showed when the step failed
                print("main monitor:", {k: v for k, v in _read(page, MAIN).items() if k != "rows"})
            except Exception as exc:
                print("main monitor: not readable:", exc)
            raise
        finally:
            browser.close()

    assert second["events"] > first["events"] and second["rows"][0]["id"] > first["rows"][0]["id"]
    assert sorted_types == sorted(sorted_types)
    assert detail.startswith("{\n")
    assert hits == ['"tool_name": "'], hits
    assert not dragged
    assert legend[0] == "events/s, total" and {"PreToolUse", "PostToolUse"} <= set(legend), legend
    lo, hi = ranged["range"].removeprefix("time ").split(" – ")
    assert all(lo <= row["cells"][1] <= hi for row in ranged["rows"]), ranged
    assert answer["permission"] is True and answer["respondedBy"] == "notebook"
    assert answer["hookEvent"]["humanInTheLoop"]["question"] == "May I deploy to staging?"
    assert "ws://127.0.0.1:9/stream" in refused["status"]
    assert stopped["state"] == "stopped"
    print(f"\n[browser] scrolling 100k rows: {scroll}")
    _publish(shots)


def test_a_saved_notebook_reopened_shows_its_snapshot(
    browser_ok: None, jupyter_lab: SimpleNamespace, artifacts_dir: Path
) -> None:
    from playwright import sync_api

    lab = jupyter_lab
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            _open(page, lab, "snapshot.ipynb")
            _run_all(page)
            _wait(page, 4, "r => r.rows.length >= 10")
            page.wait_for_function(
                "() => +(document.querySelector('.wsn-mon') || {dataset: {}}).dataset.snapshotAt"
            )
            # JupyterLab's dark theme: the monitor follows its CSS variables, chart included
            page.locator(".lm-MenuBar-item", has_text="Settings").first.click()
            page.locator(".lm-Menu-item", has_text="Theme").first.hover()
            page.locator(".lm-Menu-item", has_text="JupyterLab Dark").first.click()
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            _charts_drawn(page, 4, 6)  # redrawn in the new colours
            dark = artifacts_dir / "monitor_dark.png"
            _shot(page, 4, dark)
            page.locator(".lm-MenuBar-item", has_text="Settings").first.click()
            page.locator(".lm-Menu-item", has_text="Theme").first.hover()
            page.locator(".lm-Menu-item", has_text="JupyterLab Light").first.click()
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
            page.keyboard.press("Control+s")
            saved = lab.root / "snapshot.ipynb"
            deadline = time.monotonic() + 30
            while "widget-state" not in saved.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)  # polling the file JupyterLab writes
            for k in api(lab.base, lab.token, "GET", "/api/kernels") or []:
                api(lab.base, lab.token, "DELETE", f"/api/kernels/{k['id']}")
            page.reload()
            snap = page.locator(".wsn-snapshot img")
            snap.wait_for()
            text = page.locator(".wsn-snapshot").inner_text()
            path = artifacts_dir / "monitor_snapshot_reopened.png"
            page.locator(".wsn-snapshot").screenshot(path=str(path))
        finally:
            browser.close()
    nb = json.loads(saved.read_text())
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    snaps = [m["state"].get("snapshot") for m in state.values() if m["state"].get("snapshot")]
    assert snaps and "<table>" in snaps[0]["html"] and snaps[0]["png"].startswith("data:image/png")
    assert "saved snapshot of" in text and ("PreToolUse" in text or "Stop" in text)
    _publish([path, dark])


def _publish(shots: list[Path]) -> None:
    if os.environ.get("WSN_UPDATE_SCREENSHOTS") == "1":  # refresh the docs only when asked
        screenshots = REPO / "docs" / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        for p in shots:
            shutil.copy(p, screenshots / p.name)
