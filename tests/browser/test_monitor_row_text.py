"""The monitor's row text in Chromium: ``monitor.js`` ``rowHead`` (the boilerplate strip and
cut the browser does on each payload head the kernel sends, ``packing.row_text``) gives what
``packing.row_heads`` computes in Python, for demo payloads and edge cases.  Only the ES module
is loaded (from a blob URL, as anywidget does): no JupyterLab."""

from __future__ import annotations

import orjson
import pytest
from _browser import with_monitor_module

from wsnotebook.demo.generator import EventGenerator
from wsnotebook.widget import packing as P

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROW_HEAD_JS = "(m, raws) => raws.map(m.rowHead)"


def test_row_head_in_chromium_strips_like_the_kernel(browser_ok: None) -> None:
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
    got = with_monitor_module(ROW_HEAD_JS, raws)
    assert got == heads
    assert sum(h != r for h, r in zip(heads, raws)) > 500  # most demo heads were stripped
