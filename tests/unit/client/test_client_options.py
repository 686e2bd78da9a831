"""Client options: bounds checked at construction, the query they produce, compression."""

from __future__ import annotations

from typing import Any

import pytest

from wsnotebook.client import Client
from wsnotebook.errors import ConfigError


def test_since_option_is_sent_on_the_first_connection() -> None:
    c = Client("ws://127.0.0.1:9/stream", since=41, batch=10, interval_ms=20)
    assert c._session.query() == {
        "ext": "1",
        "since": "41",
        "batch": "10",
        "interval_ms": "20",
        "format": "columns",
    }
    c = Client("ws://127.0.0.1:9/stream", batch=10, interval_ms=20.0)  # a whole float is fine
    assert c._session.query()["interval_ms"] == "20"
    assert Client("ws://127.0.0.1:9/stream", batch=None)._session.query() == {"ext": "1"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch": "sometimes"},
        {"batch": -1},
        {"interval_ms": 10**6},
        {"interval_ms": 12.5},  # the server takes whole milliseconds only
        {"interval_ms": True},
        {"since": -3},
        {"ping_interval": 0},
        {"open_timeout": 0},
        {"max_message_bytes": 10},
        {"traffic_size": 0},
        {"backoff_base": 0},
        {"frame": object()},
    ],
)
def test_invalid_options_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Client("ws://127.0.0.1:9/stream", **kwargs)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:4000/stream", False),
        ("ws://127.8.9.10:4000/stream", False),
        ("ws://[::1]:4000/stream", False),
        ("ws://localhost:4000/stream", False),
        ("wss://LOCALHOST/stream", False),
        ("ws://10.0.0.5:4000/stream", True),
        ("wss://events.example.com/stream", True),
        ("ws://localhost.example.com/stream", True),
    ],
)
def test_compression_auto_is_off_on_loopback_and_on_elsewhere(url: str, expected: bool) -> None:
    assert Client(url)._session.compression is expected
    assert Client(url, compression=True)._session.compression is True
    assert Client(url, compression=False)._session.compression is False


def test_compression_rejects_other_values() -> None:
    with pytest.raises(ConfigError, match="compression"):
        Client("ws://127.0.0.1:9/stream", compression="yes")


def test_options_are_checked_in_one_place_without_a_client() -> None:
    from wsnotebook.client import ClientOptions

    assert ClientOptions().batch == "auto"
    with pytest.raises(ConfigError, match="close_timeout must be in"):
        ClientOptions(close_timeout=61)
    with pytest.raises(ConfigError, match="ping_timeout must be in"):
        ClientOptions(ping_timeout=-1)


@pytest.mark.parametrize(
    ("options", "url", "expected"),
    [
        ({}, "ws://127.0.0.1:4000/stream", True),  # the default: auto
        ({"compression": False, "ping_interval": None}, "ws://127.0.0.1:4000/stream", True),
        ({}, "wss://127.0.0.1:4000/stream", False),  # keeps its certificate check
        ({"batch": 0}, "ws://127.0.0.1:4000/stream", False),  # asks for a wire behaviour
        ({"batch": None}, "ws://127.0.0.1:4000/stream", False),
        ({"batch": 100}, "ws://127.0.0.1:4000/stream", False),
        ({"interval_ms": 20}, "ws://127.0.0.1:4000/stream", False),
        ({"compression": True}, "ws://127.0.0.1:4000/stream", False),
        ({"in_process": True}, "wss://127.0.0.1:4000/stream", True),  # as asked
        ({"in_process": True, "batch": 0}, "ws://127.0.0.1:4000/stream", True),
        ({"in_process": False}, "ws://127.0.0.1:4000/stream", False),
    ],
)
def test_in_process_auto_is_taken_unless_an_option_asks_for_a_socket(
    options: dict[str, object], url: str, expected: bool
) -> None:
    from wsnotebook.client import ClientOptions

    assert ClientOptions(**options).in_process_for(url) is expected  # type: ignore[arg-type]


def test_in_process_rejects_other_values() -> None:
    with pytest.raises(ConfigError, match="in_process must be 'auto', True or False"):
        Client("ws://127.0.0.1:9/stream", in_process="yes")
    with pytest.raises(ConfigError, match="in_process"):
        Client("ws://127.0.0.1:9/stream", in_process=1)  # type: ignore[arg-type]


def test_an_unknown_connect_option_is_a_config_error_naming_the_options() -> None:
    import wsnotebook as wsn

    # it was Python's TypeError from Client.__init__; nothing starts
    with pytest.raises(ConfigError, match=r"unknown option 'bogus'; the options: frame, max_rows"):
        wsn.connect("ws://127.0.0.1:1/stream", bogus=1)
