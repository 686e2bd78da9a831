"""Hostile answers and theme bodies against a live server: any JSON value (or bytes that are
not JSON) as the body of ``POST /events/<id>/respond`` or ``POST/PUT /api/themes`` gets a
documented status (never a 500), an answer is recorded at most once, and the server keeps
serving.  ``WSN_FULL=1`` runs 10x the examples."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from _helpers import hitl_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsnotebook as wsn

N = 10 if os.environ.get("WSN_FULL") == "1" else 1

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
answers = st.fixed_dictionaries(
    {},
    optional={
        "permission": st.booleans() | json_values,
        "response": st.text(max_size=30) | json_values,
        "choice": st.sampled_from(["a", "b", "z"]) | json_values,
        "hookEvent": json_values,
        "respondedBy": st.text(max_size=10) | json_values,
    },
)
bodies = answers | json_values | st.binary(max_size=40)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    srv = wsn.serve(port=0)
    yield srv
    srv.stop()


def post(srv: Any, path: str, body: bytes, method: str = "POST") -> tuple[int, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@settings(
    max_examples=60 * N, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(["permission", "question", "choice"]), body=bodies)
def test_any_answer_gets_a_documented_status(server: Any, kind: str, body: Any) -> None:
    asked = server.publish(hitl_event("ws://127.0.0.1:9/", kind, choices=["a", "b"]))[0]
    path = f"/events/{asked['id']}/respond"
    status, reply = post(server, path, encode(body))
    assert status in (200, 400), (status, reply)
    if status == 400:
        assert reply["error"].startswith("Invalid request")
        return
    assert reply["humanInTheLoopStatus"]["status"] == "responded"
    again, reply = post(server, path, encode(body))
    assert again == 409, reply


@settings(
    max_examples=60 * N, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, method=st.sampled_from(["POST", "PUT", "IMPORT"]))
def test_any_theme_body_gets_a_documented_status(server: Any, body: Any, method: str) -> None:
    if method == "PUT":
        status, reply = post(server, "/api/themes/missing-id", encode(body), "PUT")
        assert status in (400, 404), (status, reply)
    else:
        path = "/api/themes/import" if method == "IMPORT" else "/api/themes"
        status, reply = post(server, path, encode(body))
        assert status in (201, 400), (status, reply)
    assert isinstance(reply, dict) and isinstance(reply.get("success"), bool)
    assert server.metrics()["errors"].get("handler", 0) == 0
