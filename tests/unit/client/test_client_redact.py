"""Secret masking (redact.py): the token never shows in a log record, a repr or metrics().

The end-to-end check (the websockets library's own handshake log) is in
tests/integration/client/test_client_logging.py."""

from __future__ import annotations

import logging

from wsnotebook.client import Client
from wsnotebook.client.redact import RedactingLogger, mask_secrets, redact_url, token_secrets


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_masking_covers_tracebacks_mapping_args_and_other_tokens() -> None:
    handler = Lines()
    inner = logging.getLogger("wsnotebook.test.redact")
    inner.addHandler(handler)
    inner.setLevel(logging.DEBUG)
    inner.propagate = False
    try:
        log = RedactingLogger(inner, token_secrets("ws://h/stream?token=q%2Fv", "abc"))
        outer = logging.LoggerAdapter(log, {"websocket": object()})  # as websockets wraps it
        try:
            raise ValueError("boom abc")
        except ValueError:
            outer.error("failed for %s", "abc", exc_info=True)
        outer.debug("%(x)s", {"x": "q/v"})
        outer.debug("> GET /stream?token=xq7tok&a=1 HTTP/1.1")
        outer.debug("Bearer   zzz")
        outer.info("bad format %d", "abc")  # must not raise
        text = "\n".join(handler.lines)
        assert "abc" not in text and "q/v" not in text and "q%2Fv" not in text
        assert "xq7tok" not in text and "zzz" not in text
        assert "ValueError: boom ***" in text and "token=***&a=1" in text
        assert len(handler.lines) == 5
    finally:
        inner.removeHandler(handler)
    assert mask_secrets("no secrets here", ()) == "no secrets here"


def test_redact_url_masks_only_the_token_value() -> None:
    assert redact_url("ws://h/stream?a=1&token=xyz") == "ws://h/stream?a=1&token=%2A%2A%2A"
    assert redact_url("ws://h/stream?a=1") == "ws://h/stream?a=1"


def test_token_never_appears_in_metrics_or_repr() -> None:
    c = Client("ws://127.0.0.1:9/stream?token=sekrit", token="sekrit2")
    assert "sekrit" not in repr(c)
    assert "sekrit" not in str(c.metrics())
