"""``connect([url, url, ...])``: a list of servers sharing one store to fail over between."""

from __future__ import annotations

import pytest

from wsnotebook.client import Client
from wsnotebook.client.url import MAX_URLS, normalize_urls
from wsnotebook.errors import ClientError


def test_normalize_urls() -> None:
    assert normalize_urls("127.0.0.1:1") == ("ws://127.0.0.1:1/stream",)
    assert normalize_urls(["http://a:1", "ws://b:2/stream", "http://a:1"]) == (
        "ws://a:1/stream",
        "ws://b:2/stream",
    )
    for bad in ([], ["ok:1", "not a host"], ["h:1"] * (MAX_URLS + 1)):
        with pytest.raises(ClientError):
            normalize_urls(bad)


def test_session_fails_over_round_robin() -> None:
    client = Client(["ws://127.0.0.1:1", "ws://127.0.0.1:2", "ws://10.0.0.1:3"])
    session = client._session
    assert client.url == client.urls[0] == session.url
    assert not session.compression  # loopback: no deflate ("auto")
    session.next_url()
    assert session.url == "ws://127.0.0.1:2/stream"
    session.next_url()
    assert session.url == "ws://10.0.0.1:3/stream" and session.compression
    session.next_url()
    assert session.url == client.urls[0] and session.failovers == 3
    metrics = client.metrics()
    assert metrics["urls"] == list(client.urls) and metrics["failovers"] == 3
    single = Client("ws://127.0.0.1:1")
    single._session.next_url()
    assert single._session.failovers == 0 and single._session.url == single.url
