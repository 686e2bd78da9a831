"""Store URLs (``serve(store=...)``) and the retain bounds."""

from __future__ import annotations

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.store import MemoryStore, open_store, parse_store_url


def test_store_urls_and_bounds() -> None:
    assert parse_store_url("memory") == ("memory", "")
    assert parse_store_url("sqlite:///rel.db") == ("sqlite", "rel.db")
    assert parse_store_url("sqlite:////abs/e.db") == ("sqlite", "/abs/e.db")
    for bad in ("sqlite:///", "mongodb://x", "redis://", "", "sqlite://x.db"):
        with pytest.raises(ConfigError):
            parse_store_url(bad)
    with pytest.raises(ConfigError, match="retain"):
        MemoryStore(retain=0)
    custom = MemoryStore(retain=3)
    assert open_store(custom, retain=10) is custom
