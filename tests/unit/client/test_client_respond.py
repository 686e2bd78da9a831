"""client.respond()'s pieces without a server (no sockets): the endpoint URL and the seed's
answer body."""

from __future__ import annotations

import pytest

from wsnotebook.client.hitl import answer_body, respond_url
from wsnotebook.errors import ConfigError


def test_respond_url() -> None:
    assert respond_url("ws://127.0.0.1:4000/stream?token=x", 7) == (
        "http://127.0.0.1:4000/events/7/respond"
    )
    assert respond_url("wss://h:1/stream", 1) == "https://h:1/events/1/respond"
    with pytest.raises(ConfigError):
        respond_url("http://h/stream", 1)


def test_answer_body() -> None:
    assert answer_body(True, None, None, "me") == {"permission": True, "respondedBy": "me"}
    assert list(answer_body(None, "x", None, "nb")) == ["response", "respondedBy"]
    assert answer_body(None, None, "c", "nb")["choice"] == "c"
    with pytest.raises(ConfigError):
        answer_body(None, None, None, "nb")
