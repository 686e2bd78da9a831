"""Stream URL normalisation and host checks (url.py): bad URLs fail at connect, never later."""

from __future__ import annotations

import pytest

from wsnotebook.client.url import normalize_url
from wsnotebook.errors import ClientError


def test_urls_are_normalised() -> None:
    assert normalize_url("http://127.0.0.1:4000") == "ws://127.0.0.1:4000/stream"
    assert normalize_url("https://h:1/") == "wss://h:1/stream"
    assert normalize_url("127.0.0.1:4000") == "ws://127.0.0.1:4000/stream"
    assert normalize_url("ws://h:1/custom?x=1") == "ws://h:1/custom?x=1"

    class Srv:
        url = "ws://127.0.0.1:5/stream"

    assert normalize_url(Srv()) == "ws://127.0.0.1:5/stream"
    with pytest.raises(ClientError):
        normalize_url("ftp://x/y")
    with pytest.raises(ClientError):
        normalize_url(42)
    for bad in ("ws://127.0.0.1:99999/stream", "ws://127.0.0.1:abc/stream", "ws://[::1/stream"):
        with pytest.raises(ClientError, match="invalid URL"):  # was a raw ValueError
            normalize_url(bad)
    # any text was taken as a host: "not a url" became a client retrying DNS lookups forever
    bad_hosts = [
        "not a url", "ws://host name/stream", "ws://-x:1/", "http://a b:80", "ws://dead%beef:1",
        "ws://abc%zz:1", "ws://.:1", "ws://...:1", "ws://a..b:1", f"ws://{'a' * 64}.com:1",
        "ws://999.999.999.999:1",
    ]  # fmt: skip
    for bad in bad_hosts:
        with pytest.raises(ClientError, match="is not a host name or address"):
            normalize_url(bad)
    good_hosts = [
        "ws://münchen.example:1", "ws://[fe80::1%eth0]:9/s", "ws://[fe80::1%25eth0]:9/",
        "ws://localhost.:4000", "ws://हिन्दी.example:4000", "ws://b%C3%BCcher.de:4000",
        "ws://[::ffff:127.0.0.1]:1", "ws://a_b.local:1", "ws://10.0.0.1:1",
    ]  # fmt: skip
    for good in good_hosts:
        assert normalize_url(good).startswith("ws://")
