"""Pure helpers of ``monitor.js`` in Chromium (the ES module alone, from a blob URL, as
anywidget loads it; no JupyterLab): ``marked`` (a search's matches in the detail pane) and
``stacked`` (the by-type chart's bands)."""

from __future__ import annotations

import pytest
from _browser import with_monitor_module

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

HELPERS_JS = """(m) => {
  const html = (text, spans) => {
    const d = document.createElement('div'); d.appendChild(m.marked(text, spans));
    return d.innerHTML;
  };
  return {
    marked: [
      html('{"a": "Bash"}', [[7, 11]]),
      html('ab ab', [[0, 2], [3, 5]]),
      html('<b>&', [[0, 3]]),                      // text, never markup
      html('abc', [[1, 2], [0, 3], [2, 9], [2, 2]]),  // overlapping, out of range, empty: left out
      html('abc', undefined),
    ],
    stacked: m.stacked([[10, 4], [11, 6], [12, 0]],
                       [[1, [[10, 2], [11, 3]]], [0, [[10, 2], [11, 3]]]]),
  };
}"""


def test_marks_and_bands_in_chromium(browser_ok: None) -> None:
    got = with_monitor_module(HELPERS_JS)
    assert got["marked"] == [
        '{"a": "<mark class="wsn-hit">Bash</mark>"}',
        '<mark class="wsn-hit">ab</mark> <mark class="wsn-hit">ab</mark>',
        '<mark class="wsn-hit">&lt;b&gt;</mark>&amp;',
        'a<mark class="wsn-hit">b</mark>c',
        "abc",
    ]
    # two types with equal counts: two bands one above the other (not one line over the
    # other), the top band ending at the total; a second with no event is 0 in every band
    assert got["stacked"] == [
        [1, [0, 0, 0], [2, 3, 0]],
        [0, [2, 3, 0], [4, 6, 0]],
    ]
