"""The text a batch sends per row (``packing.row_text``) and what the browser makes of it
(``monitor.js`` ``rowHead``): a summary marked as such, else the raw head of the payload JSON,
which the browser strips of the hook boilerplate keys and cuts, as ``packing.row_heads`` does
in Python.  The JavaScript is run with Node when it is installed (the browser tests run it in
Chromium)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from _monitor_helpers import make_events, shown_text

from wsnotebook.demo.generator import EventGenerator
from wsnotebook.frame import EventFrame
from wsnotebook.widget import packing as P

MONITOR_JS = Path(P.__file__).parent / "static" / "monitor.js"

BOILERPLATE_CASES = [
    b'{"session_id":"s1","transcript_path":"~/t.jsonl","cwd":"/p","hook_event_name":"Stop",'
    b'"permission_mode":"default","tool_name":"Grep"}',
    b'{"session_id":"a\\"b","cwd":"/p","prompt":"hi"}',  # an escaped quote in a value
    b'{"prompt":"first","session_id":"s"}',  # boilerplate only at a row's start
    b'{"session_id":"s","prompt":"' + b"x" * 900 + b'"}',  # a long row is cut
    b'{"session_id":"s","n":1}',
    b'{"cwd":"/tmp\\\\","permission_mode":plan,"hook_event_name":"Stop"}',  # bare value, \\
    b'{"session_id":"' + b"y" * 700 + b'"}',  # boilerplate longer than the head sent
    b"{}",
    b'{"a":[1,\n2]}',  # a sender's raw newline between tokens
]


def batch(frame: EventFrame, n: int) -> tuple[list[Any], list[bytes], bytes]:
    """The newest ``n`` rows as sent: summaries, ``text`` entries, the whole buffer."""
    tail = frame.tail_columns(n)
    text, start, length = P.row_text(tail.summary, tail)
    assert len(start) == len(length) == len(tail)
    ends = (start + length).tolist()
    assert all(e <= len(text) for e in ends)
    order = np.argsort(start, kind="stable")  # entries never overlap
    assert all(ends[i] <= start[j] for i, j in itertools.pairwise(order.tolist()))
    return tail.summary, [text[a:b] for a, b in zip(start.tolist(), ends)], text


def test_rows_without_a_summary_send_their_raw_payload_head() -> None:
    frame = EventFrame(chunk_rows=4)  # rows in frozen (compressed) chunks and the open one
    valid = []
    for case in BOILERPLATE_CASES:
        try:
            valid.append(orjson.loads(case))
        except orjson.JSONDecodeError:
            pass
    valid.append({"session_id": "s", "output": "o" * 5000})  # only its head is sent
    events = make_events(len(valid))
    for ev, payload in zip(events, valid):
        ev["payload"] = payload
    frame.extend(events)
    payloads = frame.tail_columns(100).payload_json
    assert payloads is not None and len(payloads[-1]) > 5000
    _, entries, _ = batch(frame, 100)
    assert entries == [p[: P.PREFIX_BYTES] for p in payloads]  # raw: the browser strips
    assert len(entries[-1]) == P.PREFIX_BYTES and len(entries[-2]) < P.PREFIX_BYTES


def test_summaries_are_marked_cut_and_may_hold_any_text() -> None:
    frame = EventFrame(chunk_rows=3)
    events = make_events(6)
    for ev, summary in zip(events, ["did it", None, "", "z" * 500, "a\nb é", None]):
        ev["summary"] = summary
        ev["payload"] = {"session_id": "s", "i": ev["id"]}
    frame.extend(events)
    summaries, entries, _ = batch(frame, 6)
    mark = P.SUMMARY_MARK
    assert entries[0] == mark + b"did it"
    assert entries[3] == mark + b"z" * P.HEAD_BYTES  # cut to HEAD_BYTES characters
    assert entries[4] == mark + "a\nb é".encode()  # offsets: no separator to escape
    assert entries[1] == b'{"session_id":"s","i":2}' and entries[2].startswith(b"{")
    shown = [shown_text(e) for e in entries]
    assert shown[:3] == ["did it", '{"i":2}', '{"i":3}'] and shown[4] == "a\nb é"
    assert not entries[5].startswith(mark)
    assert summaries[2] == ""  # an empty summary shows the payload, as before


def test_a_batch_without_text_and_an_empty_batch() -> None:
    frame = EventFrame()
    frame.extend(make_events(3))
    tail = frame.tail_columns(3, payload=False)  # numeric columns only: empty texts
    assert tail.payload_heads(10) == [b""] * 3
    assert tail.payload_heads(10, np.array([True, False, True])) == [b""] * 2
    text, start, length = P.row_text(tail.summary, tail)
    assert text == b"" and list(length) == [0, 0, 0]
    empty = frame.tail_columns(0)
    text, start, length = P.row_text(empty.summary, empty)
    assert text == b"" and len(start) == len(length) == 0


def test_the_browser_shows_what_row_heads_computes() -> None:
    # The helper that decodes batches (as monitor.js does, with the kernel's regex) gives
    # ``row_heads``' text for ASCII payloads: stripped in the browser, same result.
    frame = EventFrame(chunk_rows=16)
    frame.extend(make_events(len(BOILERPLATE_CASES)))
    payloads = [
        p.replace(b"\n", b" ") for p in BOILERPLATE_CASES
    ]  # row_heads joins rows with newlines: it cannot take one inside a payload
    heads = P.row_heads([None] * len(payloads), payloads)
    assert [shown_text(p[: P.PREFIX_BYTES]) for p in payloads] == [h.decode() for h in heads]


def _js_row_heads(raws: list[str]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the browser tests check rowHead in Chromium)")
    script = (
        "const src = require('fs').readFileSync(process.argv[1], 'utf8');\n"
        "const url = 'data:text/javascript;base64,' + Buffer.from(src).toString('base64');\n"
        "import(url).then((m) => {\n"
        "  const raws = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "  process.stdout.write(JSON.stringify(raws.map(m.rowHead)));\n"
        "});\n"
    )
    out = subprocess.run(
        [node, "-e", script, str(MONITOR_JS)],
        input=json.dumps(raws),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[str] = json.loads(out.stdout)
    return result


def test_monitor_js_row_head_strips_like_the_python_regex() -> None:
    gen = EventGenerator(seed=5)
    payloads = [orjson.dumps(ev["payload"]) for ev in gen.take(2000)]
    payloads += [p.replace(b"\n", b" ") for p in BOILERPLATE_CASES]
    heads = P.row_heads([None] * len(payloads), payloads)
    raws = [p[: P.PREFIX_BYTES].decode("utf-8", "replace") for p in payloads]
    assert _js_row_heads(raws) == [h.decode() for h in heads]  # ASCII: bytes == characters
    # non-ASCII: cut at 200 characters (never half a character or surrogate pair)
    wide = ['{"cwd":"/p","t":"' + "é" * 300 + '"}', '{"t":"x' + "\U0001f600" * 150 + '"}']
    got = _js_row_heads(wide)
    assert got[0] == '{"t":"' + "é" * (P.HEAD_BYTES - 6)
    assert got[1] == '{"t":"x' + "\U0001f600" * 96  # 199 UTF-16 units: no lone half
