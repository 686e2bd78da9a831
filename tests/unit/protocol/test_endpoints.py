"""events_endpoint: the POST /events URL of any server URL, the one rule every producer uses."""

from __future__ import annotations

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.protocol import events_endpoint


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:4000/stream", "http://127.0.0.1:4000/events"),
        ("wss://host:9/stream?batch=5&token=abc", "https://host:9/events?token=abc"),
        ("http://localhost:4000", "http://localhost:4000/events"),
        ("http://localhost:4000/", "http://localhost:4000/events"),
        ("http://localhost:4000/events", "http://localhost:4000/events"),
        # behind Jupyter's proxy: the prefix is where the server's ingest lives
        (
            "https://hub.example/user/ann/proxy/4000/stream?token=t",
            "https://hub.example/user/ann/proxy/4000/events?token=t",
        ),
        ("http://h/proxy/4000", "http://h/proxy/4000/events"),
        (" WS://h:1/stream ", "http://h:1/events"),
    ],
)
def test_any_server_url_maps_to_its_ingest_endpoint(url: str, expected: str) -> None:
    assert events_endpoint(url) == expected


@pytest.mark.parametrize("url", ["ftp://x/y", "localhost:4000", "http:///events", "", 4000])
def test_anything_but_an_absolute_http_or_ws_url_is_a_config_error(url: object) -> None:
    with pytest.raises(ConfigError):
        events_endpoint(url)  # type: ignore[arg-type]
