"""Redis store URLs (parsing, bounds, redaction), the Redis store's options and the pure helpers
of its Lua scripts.  No Redis needed: the behaviour is tested against a real redis-server in
tests/integration/store/test_redis_store.py."""

from __future__ import annotations

import orjson
import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.store import RedisOptions, RedisStore, open_store, parse_store_url, safe_store_url
from wsnotebook.store.redis_lua import append_args, entry_id, prestamp, splice_id
from wsnotebook.store.redis_url import RedisTarget, is_redis_url, parse_redis_url, redact_url
from wsnotebook.store.stamping import snapshot_events

SECRET = "p@ss:w/rd"
QUOTED = "p%40ss%3Aw%2Frd"


def test_parse_defaults_and_fields() -> None:
    t = parse_redis_url("redis://localhost")
    assert (t.tls, t.host, t.port, t.db, t.stream) == (False, "localhost", 6379, 0, "events")
    assert t.password is None and t.username is None
    t = parse_redis_url(f"rediss://alice:{QUOTED}@[::1]:7000/3?stream=a.b:c&ssl_cert_reqs=none")
    assert (t.tls, t.host, t.port, t.db, t.stream) == (True, "::1", 7000, 3, "a.b:c")
    assert (t.username, t.password, t.ssl_cert_reqs) == ("alice", SECRET, "none")
    assert t.meta_key == "{a.b:c}:meta" and t.facet_key("x") == "{a.b:c}:facet:x"
    t = parse_redis_url("redis://:pw@h:1/0?connect_timeout=0.5")
    assert t.password == "pw" and t.username is None and t.connect_timeout == 0.5


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis://", "no host"),
        ("redis://h:99999", "Port out of range"),
        ("redis://h/abc", "db number"),
        ("redis://h/0?stream=", "stream name"),
        ("redis://h/0?stream=a%20b", "stream name"),
        ("redis://h/0?strem=x", "unknown parameter"),
        ("redis://h/0?ssl_cert_reqs=none", "rediss://"),
        ("rediss://h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("redis://h/0?connect_timeout=0", "connect_timeout"),
        ("redis://h/0?connect_timeout=nan", "connect_timeout"),
        ("redis://h/0#frag", "fragment"),
        ("http://h", "redis://"),
    ],
)
def test_malformed_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_redis_url(url)


def test_password_is_never_shown() -> None:
    url = f"redis://bob:{QUOTED}@h:1/2?stream=s"
    t = parse_redis_url(url)
    assert t.safe_url == "redis://bob:***@h:1/2?stream=s"
    assert SECRET not in repr(t) and QUOTED not in repr(t)
    assert redact_url(url) == "redis://bob:***@h:1/2?stream=s"
    assert redact_url("redis://:x@h") == "redis://:***@h"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"  # a port is not a password
    assert safe_store_url(url) == redact_url(url) and safe_store_url("memory") == "memory"
    store = RedisStore(url)
    assert QUOTED not in repr(store) and SECRET not in repr(store)
    assert QUOTED not in str(store.stats()) and SECRET not in str(store.stats())
    with pytest.raises(ConfigError) as info:
        parse_redis_url(f"redis://:{QUOTED}@h:1/x")
    assert QUOTED not in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_store_url(f"mongodb://:{QUOTED}@h")
    assert QUOTED not in str(info.value)


def test_store_url_dispatch_and_options() -> None:
    assert is_redis_url("rediss://h") and not is_redis_url("sqlite:///x") and not is_redis_url(3)
    assert parse_store_url("redis://h/1") == ("redis", "redis://h/1")
    store = open_store("redis://h/1?stream=x", retain=5, retain_bytes=2048)
    assert isinstance(store, RedisStore) and store.feeds
    assert (store.retain, store.retain_bytes, store.target.stream) == (5, 2048, "x")
    assert store.last_id == 0 and store.first_id is None and len(store) == 0
    with pytest.raises(ConfigError, match="retain"):
        RedisStore("redis://h", retain=0)
    for bad in ({"block_ms": 5}, {"read_count": 0}, {"command_timeout": 0}, {"backoff_cap": 0.01}):
        with pytest.raises(ConfigError):
            RedisOptions(**bad)  # type: ignore[arg-type]
    assert RedisStore(RedisTarget(False, "h", 1, 0, "s")).target.port == 1


def test_lua_helpers_build_what_the_script_stores() -> None:
    events = [
        {"source_app": "a", "session_id": "s", "hook_event_type": "T", "payload": {}},
        {"source_app": "b", "session_id": "t", "hook_event_type": "U", "payload": {"k": 1},
         "timestamp": 5},
    ]  # fmt: skip
    items = snapshot_events(events)
    pres = prestamp(items, 1234.5)
    first = orjson.loads(splice_id(pres[0], 7))
    second = orjson.loads(splice_id(pres[1], 8))
    assert first["id"] == 7 and first["timestamp"] == 1234 and first["server_received"] == 1234.5
    assert second["id"] == 8 and second["timestamp"] == 5 and second["payload"] == {"k": 1}
    args = append_args("ep", 10, 4096, items, pres)
    # then the offsets of the questions and of the pending ones (none here)
    assert args[:5] == ["ep", 10, 4096, "", ""] and args[5:9] == [pres[0], "a", "s", "T"]
    assert len(args) == 5 + 4 * len(items)
    assert entry_id(b"42-0") == 42 and entry_id("7-0") == 7
