"""The monitor's row text in Chromium: ``monitor.js`` ``rowHead`` (the boilerplate strip and
cut the browser does on each payload head the kernel sends, ``packing.row_text``) gives what
``packing.row_heads`` computes in Python, for demo payloads and edge cases.  Only the ES module
is loaded (from a blob URL, as anywidget does): no JupyterLab."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _browser import CHROMIUM, CHROMIUM_FLAGS, REPO

from wsnotebook.demo.generator import EventGenerator
from wsnotebook.widget import packing as P

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROW_HEAD_JS = """async ([src, raws]) => {
  const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
  const m = await import(url);
  return raws.map(m.rowHead);
}"""


def test_row_head_in_chromium_strips_like_the_kernel(browser_ok: None) -> None:
    from playwright import sync_api

    payloads = [orjson.dumps(ev["payload"]) for ev in EventGenerator(seed=9).take(1000)]
    payloads += [
        b'{"session_id":"a\\"b","cwd":"/p","prompt":"hi"}',
        b'{"prompt":"first","session_id":"s"}',
        b'{"cwd":"/tmp\\\\","permission_mode":plan,"hook_event_name":"Stop"}',
        b'{"session_id":"' + b"y" * 700 + b'"}',
        b"{}",
    ]
    heads = [h.decode() for h in P.row_heads([None] * len(payloads), payloads)]
    raws = [p[: P.PREFIX_BYTES].decode() for p in payloads]
    src = (REPO / "wsnotebook/widget/static/monitor.js").read_text()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_content("<html><body></body></html>")
            got: Any = page.evaluate(ROW_HEAD_JS, [src, raws])
        finally:
            browser.close()
    assert got == heads
    assert sum(h != r for h, r in zip(heads, raws)) > 500  # most demo heads were stripped
