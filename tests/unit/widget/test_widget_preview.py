"""The table's cell previews (wsnotebook.widget.preview): the JSON-text scanner agrees with
decoding, and reads only what the cell shows."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.widget import preview as P

pytestmark = pytest.mark.timeout(60)


_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=300),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)


_PAYLOAD_KEYS = st.one_of(
    st.sampled_from([*sorted(P.BOILERPLATE_KEYS), "tool_name", "tool_input"]), st.text(max_size=8)
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_PAYLOAD_KEYS, _JSON_VALUES, max_size=8))
def test_the_payload_preview_from_json_text_equals_the_preview_of_the_decoded_payload(
    payload: dict[str, Any],
) -> None:
    text = orjson.dumps(payload)
    assert P.preview_json(text) == P.preview(None, orjson.loads(text))


def test_the_payload_preview_reads_only_what_the_cell_shows() -> None:
    """A 0.9 MB tool output is not decoded to show 160 characters: the scan stops once the
    cell is full, so text past that point is never read (here it is not even JSON)."""
    head = b'{"session_id":"s","cwd":"/w","tool_name":"Read","tool_response":"'
    text = head + b"x" * 900_000 + b"<not json"
    preview = P.preview_json(text)
    assert preview == ('{"tool_name":"Read","tool_response":"' + "x" * 200)[:159] + "…"
    # cut inside a 4-byte character: still a full cell, and marked as cut
    wide = orjson.dumps({"a": "\U0001f600" * 170})
    assert P.preview_json(wide) == P.preview(None, orjson.loads(wide))
    # not a compact object: None, and the table decodes it instead
    for text in (b"[1]", b'{ "a": 1 }', b'{"a": 1}', b'{"a":1', b'{"a":}', b'{"a":1]'):
        assert P.preview_json(text) is None
    # a huge value under a key the preview skips is not walked token by token (187 ms for
    # 100k numbers; decoding is faster)
    assert P.preview_json(orjson.dumps({"session_id": list(range(100_000)), "a": 1})) is None
