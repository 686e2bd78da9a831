"""HTTP endpoints of the server: seed contract, every error path, CORS, token, origin, TLS."""

from __future__ import annotations

import json
import ssl
from typing import Any

import pytest
from _helpers import wss_first_message
from websockets.sync.client import connect

from wsnotebook.server import Server

HOOK_HEADERS = {
    "Content-Type": "application/json",
    "Connection": "close",
    "User-Agent": "Claude-Code-Hook/1.0",
}


def post(http_request: Any, srv: Server, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return http_request("POST", srv.http_url + "/events", raw, headers or HOOK_HEADERS)


def test_seed_hook_request_gets_200_and_the_stored_event_keeps_every_field(
    server: Server, http_request: Any, make_event: Any
) -> None:
    event = make_event(summary="ran ls", chat=[{"role": "user"}], custom_top={"k": [1, 2]})
    res = post(http_request, server, event)
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("application/json")
    stored = res.json()
    assert stored["id"] == 1
    assert isinstance(stored["timestamp"], int)
    assert isinstance(stored["server_received"], float)
    for key, value in event.items():
        assert stored[key] == value
    recent = http_request("GET", server.http_url + "/events/recent").json()
    assert recent == [stored]


def test_given_timestamp_is_kept_and_ids_increase(
    server: Server, http_request: Any, make_event: Any
) -> None:
    first = post(http_request, server, make_event(timestamp=1234)).json()
    second = post(http_request, server, make_event()).json()
    assert first["timestamp"] == 1234
    assert (first["id"], second["id"]) == (1, 2)


def test_array_body_is_a_batch_and_returns_an_array(
    server: Server, http_request: Any, make_event: Any
) -> None:
    res = post(http_request, server, [make_event(n=i) for i in range(3)])
    assert res.status == 200
    assert [e["id"] for e in res.json()] == [1, 2, 3]
    assert [e["n"] for e in res.json()] == [0, 1, 2]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "invalid JSON"),
        (b"42", "expected object or array"),
        (b"[]", "empty batch"),
        ({"session_id": "s", "hook_event_type": "x", "payload": {}}, "source_app: missing"),
        (
            {"source_app": "a", "session_id": "s", "hook_event_type": "x", "payload": "p"},
            "payload: expected object, got string",
        ),
        (
            [{"source_app": "a", "session_id": "s", "hook_event_type": "x", "payload": {}}, 1],
            "events[1]",
        ),
    ],
)
def test_bad_bodies_get_400_naming_the_problem(
    server: Server, http_request: Any, body: Any, needle: str
) -> None:
    res = post(http_request, server, body)
    assert res.status == 400
    assert needle in res.json()["error"]
    assert server.metrics()["rejected"]["400"] == 1
    assert server.store.last_id == 0


def test_post_json_content_type_spellings_are_accepted_as_before(
    server: Server, http_request: Any, make_event: Any
) -> None:
    """The plain header takes a shortcut; every other spelling aiohttp parses as before."""
    for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        assert post(http_request, server, make_event(), {"Content-Type": ctype}).status == 200
    for ctype in ("application/jsonx", "text/json", "application/json-seq"):
        assert post(http_request, server, make_event(), {"Content-Type": ctype}).status == 415
    assert server.store.last_id == 3


def test_post_without_json_content_type_is_415(
    server: Server, http_request: Any, make_event: Any
) -> None:
    # a cross-site "simple" POST (text/plain) must not be able to inject events
    res = post(http_request, server, make_event(), {"Content-Type": "text/plain"})
    assert res.status == 415
    assert "application/json" in res.json()["error"]
    res = post(http_request, server, make_event(), {"User-Agent": "no-content-type"})
    assert res.status == 415
    assert server.store.last_id == 0


def test_size_and_batch_limits_give_413(
    server_factory: Any, http_request: Any, make_event: Any
) -> None:
    srv = server_factory(max_event_bytes=2048, max_message_bytes=8192, max_batch_events=3)
    big = make_event(payload={"blob": "x" * 4000})
    res = post(http_request, srv, big)
    assert res.status == 413
    assert "exceeds the limit of 2048" in res.json()["error"]
    res = post(http_request, srv, [make_event(payload={"b": "x" * 3000})] * 3)
    assert res.status == 413
    assert "8192" in res.json()["error"]
    res = post(http_request, srv, [make_event()] * 4)
    assert res.status == 413
    assert "batch of 4 events exceeds the limit of 3" in res.json()["error"]
    assert srv.store.last_id == 0
    assert srv.metrics()["rejected"]["413"] == 3


def test_recent_limit_and_its_errors(server: Server, http_request: Any, make_event: Any) -> None:
    server.publish([make_event(n=i) for i in range(10)])
    url = server.http_url + "/events/recent"
    assert [e["n"] for e in http_request("GET", url + "?limit=3").json()] == [7, 8, 9]
    assert len(http_request("GET", url).json()) == 10
    assert http_request("GET", url + "?limit=0").json() == []
    for bad in ("abc", "-1", "100001"):
        res = http_request("GET", f"{url}?limit={bad}")
        assert res.status == 400
        assert "limit" in res.json()["error"]


def test_filter_options_lists_distinct_sorted_values(
    server: Server, http_request: Any, make_event: Any
) -> None:
    server.publish(
        [
            make_event(source_app="b", session_id="s2", hook_event_type="Stop"),
            make_event(source_app="a", session_id="s1"),
            make_event(source_app="b", session_id="s1"),
        ]
    )
    res = http_request("GET", server.http_url + "/events/filter-options")
    assert res.json() == {
        "source_apps": ["a", "b"],
        "session_ids": ["s1", "s2"],
        "hook_event_types": ["PreToolUse", "Stop"],
    }


def test_unknown_path_and_method_get_json_errors(server: Server, http_request: Any) -> None:
    res = http_request("GET", server.http_url + "/nope")
    assert res.status == 404 and "error" in res.json()
    res = http_request("PUT", server.http_url + "/events", b"{}")
    assert res.status == 405 and "error" in res.json()


def test_health_and_metrics_in_json_and_prometheus(
    server: Server, http_request: Any, make_event: Any
) -> None:
    server.publish(make_event())
    health = http_request("GET", server.http_url + "/health").json()
    assert health["status"] == "ok" and health["seq"] == 1 and health["epoch"] == server.epoch
    metrics = http_request("GET", server.http_url + "/metrics").json()
    assert metrics["events_in"] == 1
    prom = http_request("GET", server.http_url + "/metrics?format=prometheus")
    assert prom.headers["Content-Type"].startswith("text/plain")
    assert "wsnotebook_events_in 1\n" in prom.body.decode()
    # every numeric figure of the JSON, flattened ones included (several were missing)
    names = {line.split()[0].split("{")[0] for line in prom.body.decode().splitlines() if line}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert f"wsnotebook_{key}" in names, key
    for key in metrics["hitl"]:
        assert f"wsnotebook_hitl_{key}" in names, key


def test_cors_preflight_and_headers_for_allowed_origins_only(
    server: Server, http_request: Any, make_event: Any
) -> None:
    origin = "http://localhost:5173"
    pre = http_request(
        "OPTIONS",
        server.http_url + "/events",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
    res = post(http_request, server, make_event(), {**HOOK_HEADERS, "Origin": origin})
    assert res.status == 200 and res.headers["Access-Control-Allow-Origin"] == origin
    evil = "https://evil.example"
    pre = http_request("OPTIONS", server.http_url + "/events", headers={"Origin": evil})
    assert pre.status == 403
    assert "Access-Control-Allow-Origin" not in pre.headers
    res = post(http_request, server, make_event(), {**HOOK_HEADERS, "Origin": evil})
    assert res.status == 403 and res.json() == {"error": "origin not allowed"}
    assert server.store.last_id == 1


def test_custom_origin_list_replaces_the_default(server_factory: Any, http_request: Any) -> None:
    srv = server_factory(allowed_origins=["https://dash.example"])
    url = srv.http_url + "/health"
    assert http_request("GET", url, headers={"Origin": "https://dash.example"}).status == 200
    assert http_request("GET", url, headers={"Origin": "http://localhost:1"}).status == 403
    anyone = server_factory(allowed_origins=["*"])
    res = http_request("GET", anyone.http_url + "/health", headers={"Origin": "http://x.y"})
    assert res.status == 200


def test_token_is_required_on_every_http_request_and_the_handshake(
    server_factory: Any, http_request: Any, make_event: Any
) -> None:
    srv = server_factory(token="s3cret")
    base = srv.http_url
    for path in ("/events/recent", "/events/filter-options", "/health", "/metrics"):
        res = http_request("GET", base + path)
        assert res.status == 401 and res.json() == {"error": "unauthorized"}
    assert post(http_request, srv, make_event()).status == 401
    wrong = {**HOOK_HEADERS, "Authorization": "Bearer nope"}
    assert post(http_request, srv, make_event(), wrong).status == 401
    good = {**HOOK_HEADERS, "Authorization": "Bearer s3cret"}
    assert post(http_request, srv, make_event(), good).status == 200
    assert http_request("GET", base + "/health?token=s3cret").status == 200
    with pytest.raises(Exception, match="401"):
        connect(srv.url, open_timeout=5).close()
    with connect(srv.url + "?token=s3cret", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "initial"
    with connect(srv.url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "initial"
    assert srv.metrics()["rejected"]["401"] == 7


def test_websocket_handshake_from_a_foreign_origin_is_refused(server: Server) -> None:
    with pytest.raises(Exception, match="403"):
        connect(server.url, origin="https://evil.example", open_timeout=5).close()  # type: ignore[arg-type]
    with connect(server.url, origin="http://127.0.0.1:8888") as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=5))["type"] == "initial"


def test_plain_http_get_on_stream_is_400(server: Server, http_request: Any) -> None:
    res = http_request("GET", server.http_url + "/stream")
    assert res.status == 400 and "WebSocket" in res.json()["error"]


def test_tls_with_a_self_signed_certificate(
    server_factory: Any, http_request: Any, make_event: Any, tls_cert: Any
) -> None:
    srv = server_factory(certfile=tls_cert.certfile, keyfile=tls_cert.keyfile)
    assert srv.url.startswith("wss://") and srv.http_url.startswith("https://")
    client_ctx = tls_cert.client_context()
    res = http_request(
        "POST",
        srv.http_url + "/events",
        json.dumps(make_event()),
        HOOK_HEADERS,
        context=client_ctx,
    )
    assert res.status == 200 and res.json()["id"] == 1
    initial = json.loads(wss_first_message(srv.url, client_ctx))
    assert [e["id"] for e in initial["data"]] == [1]
    with pytest.raises(ssl.SSLError):
        http_request("GET", srv.http_url + "/health", context=ssl.create_default_context())
