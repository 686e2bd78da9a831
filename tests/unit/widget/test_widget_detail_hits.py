"""Where the search in use matches, in the detail pane (``widget.actions``): the filter's
matches in the compact payload text, shown at the same characters of the pretty text."""

from __future__ import annotations

import random
import re

import orjson

from wsnotebook.demo import EventGenerator
from wsnotebook.widget import actions


def _pretty(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _squeeze(text: str) -> str:
    return re.sub(r"\s", "", text)


def test_every_span_of_the_compact_text_maps_to_the_same_characters_pretty() -> None:
    rng = random.Random(7)
    for event in EventGenerator(3).take(200):
        payload = event["payload"]
        compact = orjson.dumps(payload).decode()
        pretty = _pretty(payload)
        spans = sorted(
            (a, a + rng.randint(1, 40))
            for a in (rng.randrange(len(compact) - 40) for _ in range(5))
        )
        mapped = actions._to_pretty(compact, pretty, spans)
        assert mapped is not None
        for (a, b), (x, y) in zip(spans, mapped):
            # the same characters; only the whitespace indentation adds between tokens differs
            assert _squeeze(pretty[x:y]) == _squeeze(compact[a:b])
            assert pretty[x] == compact[a] and pretty[y - 1] == compact[b - 1]


def test_strings_holding_json_punctuation_and_spaces_stay_aligned() -> None:
    payload = {"a": 'x": "y', "b": [1, {"c": "d , e"}], "é": 'ü \\ "q"'}
    hits = actions._hits(re.escape('"c":"d , e"'), payload, _pretty(payload), None)
    (span,) = hits["hits"]
    assert _pretty(payload)[span[0] : span[1]] == '"c": "d , e"'
    hits = actions._hits(re.escape('\\"q\\"'), payload, _pretty(payload), None)
    assert [_pretty(payload)[a:b] for a, b in hits["hits"]] == ['\\"q\\"']


def test_hits_are_bounded_and_empty_matches_are_left_out() -> None:
    payload = {"text": "ab " * 500}
    hits = actions._hits("ab", payload, _pretty(payload), "ab ab")
    assert len(hits["hits"]) == actions.MAX_HITS and hits["summary_hits"] == [[0, 2], [3, 5]]
    assert actions._hits("z*", payload, _pretty(payload), "y")["hits"] == []  # empty matches only


def test_a_payload_too_long_to_map_is_searched_in_its_pretty_text() -> None:
    payload = {"k": "v" * actions.MAP_CHARS, "tool": "Bash"}
    pretty = _pretty(payload)
    hits = actions._hits(re.escape('"tool":"Bash"'), payload, pretty, None)
    assert hits["hits"] == []  # the compact form's match is not looked for there
    hits = actions._hits("Bash", payload, pretty, None)
    assert [pretty[a:b] for a, b in hits["hits"]] == ["Bash"]


def test_texts_that_are_not_the_same_json_are_not_mapped() -> None:
    assert actions._to_pretty('{"a":1}', '{\n  "b": 1\n}', [(2, 3)]) is None
    assert actions._hits(None, {"a": 1}, "{}", None) == {}
    assert actions._hits("(", {"a": 1}, "{}", None) == {}


def test_offsets_count_utf16_units_as_the_browser_does() -> None:
    payload = {"note": "🚀 rocket é", "tool": "Bash"}
    pretty = _pretty(payload)
    hits = actions._hits("Bash|rocket", payload, pretty, "🚀🚀 Bash")
    units = pretty.encode("utf-16-le")
    shown = [units[2 * a : 2 * b].decode("utf-16-le") for a, b in hits["hits"]]
    assert shown == ["rocket", "Bash"]
    units = "🚀🚀 Bash".encode("utf-16-le")
    assert [units[2 * a : 2 * b].decode("utf-16-le") for a, b in hits["summary_hits"]] == ["Bash"]
