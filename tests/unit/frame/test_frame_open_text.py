"""The open chunk's payload text: written into spare capacity that doubles when full
(``OpenChunk.add_text``), cut back by ``truncate``, read by ``view``/``tail_view``."""

from __future__ import annotations

from wsnotebook.frame.chunks import _TEXT_MIN, NSEP, SEP, OpenChunk


def _rows(n: int, size: int) -> list[bytes]:
    return [b'{"i":%d,"pad":"%s"}' % (i, b"x" * (size + i % 7)) for i in range(n)]


def _add(op: OpenChunk, rows: list[bytes]) -> None:
    for row in rows:
        op.cum.append(op.cum[-1] + len(row))
        op.ids.append(op.n)
        for col in (op.ts, op.sr, op.cr):
            col.append(1.0)
        for codes in op.cats:
            codes.append(-1)
        op.summary.append(None)
        op.chat.append(None)
        op.extra.append(None)
    op.add_text(SEP.join(rows))
    op.n += len(rows)
    op.snap = None


def test_text_survives_growth_past_the_first_capacity_and_equals_the_joined_rows() -> None:
    op = OpenChunk(100_000)
    rows = _rows(3000, 100)
    for start in range(0, len(rows), 37):  # batches of 37 rows, ~4 KB each
        _add(op, rows[start : start + 37])
    expected = b"".join(r + SEP for r in rows)
    assert op.used == len(expected) > 4 * _TEXT_MIN  # grew (doubled) several times
    assert len(op.blob) >= op.used
    assert op.text() == expected
    assert bytes(op.view(frozen=False).blob) == expected
    tail = op.tail_view(5)
    assert tail.text() == b"".join(r + SEP for r in rows[-5:])


def test_truncate_cuts_the_text_back_and_later_rows_overwrite_the_spare_bytes() -> None:
    op = OpenChunk(1000)
    rows = _rows(50, 2000)
    _add(op, rows[:30])
    op.truncate(10, True)
    assert op.used == sum(len(r) + NSEP for r in rows[:10])
    _add(op, rows[40:45])
    kept = rows[:10] + rows[40:45]
    assert op.text() == b"".join(r + SEP for r in kept)
    frozen = op.view(frozen=True)
    assert frozen.text() == op.text() and frozen.raw_size == op.used
