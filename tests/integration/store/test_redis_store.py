"""The Redis Streams store against a real ``redis-server`` (tests/_redis.py; no mocks).

One server or two in this process on one stream: ids are the stream's integers, the epoch is the
stream's, both servers deliver every event once in one order, ``/events/recent`` and
``/events/filter-options`` agree; retention by count and bytes is the usual reset/gap; Redis
down gives 503 with WebSocket clients kept, and the server reconnects; a malformed URL or an
unreachable Redis is a ConfigError at ``serve()``; a password never shows in reprs, metrics or
logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from wsnotebook.client import connect
from wsnotebook.errors import ConfigError
from wsnotebook.server import Server
from wsnotebook.store.redis_local import LocalRedis

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0
FAST = {"backoff_base": 0.01, "backoff_cap": 0.2, "open_timeout": 5.0}


def ev(n: int, app: str = "app") -> dict[str, Any]:
    return {
        "source_app": app,
        "session_id": f"s{n % 3}",
        "hook_event_type": "T",
        "payload": {"n": n},
    }


def post(http_request: Callable[..., Any], srv: Server, body: Any) -> Any:
    return http_request(
        "POST",
        f"{srv.http_url}/events",
        json.dumps(body),
        {"Content-Type": "application/json"},
    )


def test_two_servers_one_order(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    http_request: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    url = redis_server.store_url("t1")
    a = server_factory(store=url)
    b = server_factory(store=url)
    assert a.epoch == b.epoch and len(a.epoch) == 16
    ca = connect([a.url], **FAST)
    cb = connect(b.url, **FAST)
    try:
        ids = []
        for i in range(40):
            srv = a if i % 2 else b
            resp = post(http_request, srv, ev(i, app=f"app{i % 4}") if i % 5 else [ev(i), ev(-i)])
            assert resp.status == 200, resp.body
            got = resp.json()
            ids += [e["id"] for e in (got if isinstance(got, list) else [got])]
        assert ids == list(range(1, len(ids) + 1))  # one total order, no hole
        n = len(ids)
        wait_until(lambda: len(ca.frame) == n and len(cb.frame) == n, timeout=WAIT)
        assert list(ca.frame.df["id"]) == ids == list(cb.frame.df["id"])
        assert ca.gaps == 0 and cb.gaps == 0
        recent_a = http_request("GET", f"{a.http_url}/events/recent?limit=1000").json()
        recent_b = http_request("GET", f"{b.http_url}/events/recent?limit=1000").json()
        assert recent_a == recent_b and [e["id"] for e in recent_a] == ids
        opts_a = http_request("GET", f"{a.http_url}/events/filter-options").json()
        opts_b = http_request("GET", f"{b.http_url}/events/filter-options").json()
        assert opts_a == opts_b
        assert opts_a["source_apps"] == ["app", "app0", "app1", "app2", "app3"]
        wait_until(lambda: a.store.last_id == n and b.store.last_id == n, timeout=WAIT)
        assert a.metrics()["store"]["retained"] == n
        # a third server started later has the same epoch and resumes a client exactly
        c = server_factory(store=url)
        assert c.epoch == a.epoch and c.store.last_id == n
    finally:
        ca.close()
        cb.close()


def test_retention_count_bytes_and_resume_gap(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    wait_until: Callable[..., Any],
) -> None:
    srv = server_factory(store=redis_server.store_url("t2"), retain=10, retain_bytes=4096)
    for i in range(30):
        srv.publish(ev(i))
    st = srv.metrics()["store"]
    assert st["retained"] == 10 and st["first_id"] == 21 and st["last_id"] == 30
    assert 0 < st["retained_bytes"] <= 4096
    big = {**ev(99), "payload": {"blob": "x" * 1500}}
    srv.publish([big, big])  # ~1.6 KB each: the byte bound evicts more than the count bound
    st = srv.metrics()["store"]
    assert st["retained_bytes"] <= 4096 and st["retained"] < 10 and st["last_id"] == 32
    # a client resuming from before the oldest retained id gets the usual reset + gap record
    client = connect(srv.url, since=5, **FAST)
    try:
        wait_until(lambda: len(client.frame) == st["retained"], timeout=WAIT)
        assert client.gaps == 1
        gap = client.frame.gaps.iloc[0]
        assert gap["from_id"] == 6 and gap["to_id"] == st["first_id"] - 1
    finally:
        client.close()


def test_redis_down_503_keeps_clients_and_recovers(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    http_request: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    srv = server_factory(store=redis_server.store_url("t3"))
    client = connect(srv.url, **FAST)
    try:
        assert post(http_request, srv, ev(1)).status == 200
        wait_until(lambda: len(client.frame) == 1, timeout=WAIT)
        redis_server.kill()
        resp = post(http_request, srv, ev(2))
        assert resp.status == 503 and "redis store" in resp.json()["error"]
        wait_until(lambda: not srv.store.connected, timeout=WAIT)  # the tail noticed
        assert client.state == "open" and len(srv.broadcaster.clients) == 1
        redis_server.start()  # AOF replayed: event 1 is still there, same epoch
        wait_until(lambda: srv.store.connected, timeout=WAIT)
        resp = post(http_request, srv, ev(3))
        assert resp.status == 200 and resp.json()["id"] == 2  # the 503 used no id
        wait_until(lambda: len(client.frame) == 2, timeout=WAIT)
        assert list(client.frame.df["id"]) == [1, 2] and client.gaps == 0
        assert client.connects == 1  # never dropped
        st = srv.metrics()["store"]
        assert st["append_errors"] >= 1 and st["tail_errors"] >= 1 and st["reconnects"] >= 1
    finally:
        client.close()


def test_config_errors_at_start(redis_server: LocalRedis) -> None:
    from wsnotebook.server import serve

    with pytest.raises(ConfigError, match="unknown parameter"):
        serve(port=0, store=redis_server.url + "?strem=x")
    redis_server.stop()
    with pytest.raises(ConfigError, match=r"cannot use Redis at redis://127\.0\.0\.1"):
        serve(port=0, store=redis_server.store_url("t4") + "&connect_timeout=1")


def test_password_never_shown(
    server_factory: Callable[..., Server],
    wait_until: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from _redis import local_redis

    secret = "s3cr3t-Pa55word"
    red = local_redis(password=secret)
    try:
        url = red.store_url("t5")
        assert secret in url
        with caplog.at_level(logging.DEBUG):
            srv = server_factory(store=url)
            srv.publish(ev(1))
            texts = [repr(srv), repr(srv.store), repr(srv.options), json.dumps(srv.metrics())]
            red.kill()  # errors are logged: still without the password
            with pytest.raises(Exception, match="redis store"):
                srv.publish(ev(2))
            wait_until(lambda: srv.store.tail_errors > 0, timeout=WAIT)
            red.start()
            wait_until(lambda: srv.store.connected, timeout=WAIT)
        assert srv.store.stats()["url"].startswith("redis://:***@127.0.0.1:")
        texts += [r.getMessage() for r in caplog.records]
        assert not [t for t in texts if secret in t]
        with pytest.raises(ConfigError) as info:
            server_factory(store=url.replace(secret, "wrong-" + secret))
        assert secret not in str(info.value)
    finally:
        red.close()


def test_redis_losing_its_data_is_a_new_epoch(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    http_request: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    import shutil

    srv = server_factory(store=redis_server.store_url("t6"))
    client = connect(srv.url, **FAST)
    try:
        for i in range(3):
            srv.publish(ev(i))
        wait_until(lambda: len(client.frame) == 3, timeout=WAIT)
        old = srv.epoch
        redis_server.kill()
        for path in redis_server.dir.glob("appendonly*"):  # Redis comes back empty
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        redis_server.start()
        # the tail reconnects, finds no epoch: a new one; the clients resume into it (1012)
        wait_until(lambda: srv.epoch != old and srv.store.connected, timeout=WAIT)
        resp = post(http_request, srv, ev(9))
        assert resp.status == 200 and resp.json()["id"] == 1
        wait_until(lambda: client.frame.total == 4 and client.gaps == 1, timeout=WAIT)
        assert client.metrics()["epoch"] == srv.epoch
        assert srv.metrics()["store"]["epoch_changes"] == 1
    finally:
        client.close()


def test_tls_with_password(
    tmp_path: Any, server_factory: Callable[..., Server], wait_until: Callable[..., Any]
) -> None:
    import trustme
    from _redis import local_redis

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = [str(tmp_path / name) for name in ("cert.pem", "key.pem", "ca.pem")]
    cert.cert_chain_pems[0].write_to_path(files[0])
    cert.private_key_pem.write_to_path(files[1])
    ca.cert_pem.write_to_path(files[2])
    red = local_redis(password="tls-secret", tls=(files[0], files[1], files[2]))
    try:
        url = red.store_url("t7")
        assert url.startswith("rediss://:tls-secret@127.0.0.1:")
        srv = server_factory(store=url)
        client = connect(srv.url, **FAST)
        try:
            assert srv.publish(ev(1))[0]["id"] == 1
            wait_until(lambda: len(client.frame) == 1, timeout=WAIT)
            assert srv.metrics()["store"]["url"].startswith("rediss://:***@127.0.0.1:")
        finally:
            client.close()
        # a client that does not trust the CA never gets in: a clear ConfigError at start
        with pytest.raises(ConfigError, match="cannot use Redis at rediss://"):
            server_factory(store=url.split("&ssl_ca_certs")[0])
    finally:
        red.close()


def test_reads_page_by_bytes(
    redis_server: LocalRedis, server_factory: Callable[..., Server]
) -> None:
    from wsnotebook.runtime import loop as _loop
    from wsnotebook.store.redis import READ_CHUNK

    srv = server_factory(store=redis_server.store_url("t8"))
    n = READ_CHUNK * 2 + 10
    stored = srv.publish([ev(i) for i in range(n)])
    size = len(json.dumps(stored[0], separators=(",", ":")))  # every event about this size
    store = srv.store
    assert [s.id for s in _loop.run(store.since(0, n))] == list(range(1, n + 1))
    assert [s.id for s in _loop.run(store.recent(n))] == list(range(1, n + 1))
    # a budget of ~300 events: pages of READ_CHUNK stop where the budget is spent
    budget = (size + 1) * 300
    got = _loop.run(store.since(5, n, budget))
    assert got[0].id == 6 and 250 < len(got) <= 300
    assert [s.id for s in got] == list(range(6, 6 + len(got)))
    assert sum(len(s.encoded) + 1 for s in got) <= budget
    newest = _loop.run(store.recent(n, budget))
    assert newest[-1].id == n and [s.id for s in newest] == list(range(n - len(newest) + 1, n + 1))
    assert 250 < len(newest) <= 300
    assert [s.id for s in _loop.run(store.recent(n, 10))] == [n]  # at least one
    assert [s.id for s in _loop.run(store.since(n - 3, 2))] == [n - 2, n - 1]
    assert _loop.run(store.since(n, 10)) == [] and _loop.run(store.recent(0)) == []
