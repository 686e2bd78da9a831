"""The seed's theme API (``/api/themes...``) on a real server, modelled on the seed's
validation rules (theme.ts): create/read/search/update/delete/export/import/stats with
``{success, data|error}`` replies; memory and SQLite (durable across a restart)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from wsnotebook.server import Server
from wsnotebook.server.theme_rules import REQUIRED_COLORS

JSON = {"Content-Type": "application/json"}


def theme(name: str = "ocean-dark", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "displayName": "Ocean Dark",
        "description": "deep blue",
        "colors": {key: "#0a1b2c" for key in REQUIRED_COLORS},
        "isPublic": True,
        "tags": ["dark", "blue"],
        "authorId": "u1",
        "authorName": "Ann",
    }
    body.update(fields)
    return body


@pytest.fixture(params=["memory", "sqlite"])
def srv(request: Any, tmp_path: Any, server_factory: Callable[..., Server]) -> Server:
    store = "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 't.db'}"
    return server_factory(store=store)


def call(http_request: Any, srv: Server, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    return http_request(method, srv.http_url + path, data, JSON if data is not None else {})


def test_create_get_search_update_delete(srv: Server, http_request: Any) -> None:
    res = call(http_request, srv, "POST", "/api/themes", theme())
    assert res.status == 201
    created = res.json()
    assert created["success"] is True and created["message"] == "Theme created successfully"
    t = created["data"]
    assert t["name"] == "ocean-dark" and t["downloadCount"] == 0 and t["rating"] == 0
    ident = t["id"]

    got = call(http_request, srv, "GET", f"/api/themes/{ident}")
    assert got.status == 200 and got.json()["data"]["displayName"] == "Ocean Dark"
    # a public theme's downloads are counted on each GET
    assert (
        call(http_request, srv, "GET", f"/api/themes/{ident}").json()["data"]["downloadCount"] == 1
    )

    # private themes are listed only for their author
    call(http_request, srv, "POST", "/api/themes", theme("secret", isPublic=False))
    listed = call(http_request, srv, "GET", "/api/themes").json()
    assert [x["name"] for x in listed["data"]] == ["ocean-dark"]
    mine = call(http_request, srv, "GET", "/api/themes?authorId=u1&sortBy=name&sortOrder=asc")
    assert [x["name"] for x in mine.json()["data"]] == ["ocean-dark", "secret"]
    found = call(http_request, srv, "GET", "/api/themes?query=DEEP").json()["data"]
    assert [x["name"] for x in found] == ["ocean-dark"]
    paged = call(http_request, srv, "GET", "/api/themes?authorId=u1&limit=1&offset=1&sortBy=name")
    assert len(paged.json()["data"]) == 1
    assert call(http_request, srv, "GET", "/api/themes?limit=abc").status == 400

    res = call(
        http_request, srv, "PUT", f"/api/themes/{ident}", {"displayName": "Ocean", "name": "x"}
    )
    assert res.status == 200
    assert res.json()["data"]["displayName"] == "Ocean"
    assert res.json()["data"]["name"] == "ocean-dark"  # the name cannot change
    res = call(http_request, srv, "PUT", f"/api/themes/{ident}", {"colors": {"primary": "nope"}})
    assert res.status == 400 and res.json()["error"] == "Validation failed"

    stats = call(http_request, srv, "GET", "/api/themes/stats").json()
    assert stats == {
        "success": True,
        "data": {
            "totalThemes": 2,
            "publicThemes": 1,
            "privateThemes": 1,
            "totalDownloads": 2,
            "averageRating": 0,
        },
    }

    res = call(http_request, srv, "DELETE", f"/api/themes/{ident}?authorId=someone-else")
    assert res.status == 403 and "only delete your own" in res.json()["error"]
    res = call(http_request, srv, "DELETE", f"/api/themes/{ident}")
    assert res.status == 200 and res.json() == {
        "success": True,
        "message": "Theme deleted successfully",
    }
    for method in ("GET", "DELETE"):
        res = call(http_request, srv, method, f"/api/themes/{ident}")
        assert res.status == 404 and res.json() == {"success": False, "error": "Theme not found"}
    res = call(http_request, srv, "PUT", f"/api/themes/{ident}", {"displayName": "x"})
    assert res.status == 404


def test_validation_rules(srv: Server, http_request: Any) -> None:
    res = call(http_request, srv, "POST", "/api/themes", {"name": "!!", "colors": {}})
    assert res.status == 400
    body = res.json()
    assert body["success"] is False and body["error"] == "Validation failed"
    errors = {(e["field"], e["code"]) for e in body["validationErrors"]}
    assert ("name", "REQUIRED") in errors  # "!!" sanitises to ""
    assert ("displayName", "REQUIRED") in errors
    assert ("colors.primary", "REQUIRED") in errors
    assert len([e for e in errors if e[0].startswith("colors.")]) == len(REQUIRED_COLORS)

    colors = {key: "#fff" for key in REQUIRED_COLORS}
    colors.update(primary="rgba(1, 2, 3, 0.5)", bgPrimary="hsl(1, 2%, 3%)")
    colors.update(textPrimary="var(--x)", shadow="transparent", focusRing="chartreuse")
    res = call(http_request, srv, "POST", "/api/themes", theme("My Theme!", colors=colors))
    body = res.json()
    assert res.status == 400
    assert body["validationErrors"] == [
        {
            "field": "colors.focusRing",
            "message": "Invalid color format for focusRing",
            "code": "INVALID_COLOR",
        }
    ]
    colors["focusRing"] = "#12345678"
    res = call(http_request, srv, "POST", "/api/themes", theme("My Theme!", colors=colors))
    assert res.status == 201 and res.json()["data"]["name"] == "mytheme"  # sanitised
    res = call(http_request, srv, "POST", "/api/themes", theme("mytheme", colors=colors))
    assert res.status == 400 and res.json()["error"] == "Theme name already exists"
    assert res.json()["validationErrors"][0]["code"] == "DUPLICATE"

    for bad in (b"{not json", b"[1, 2]"):
        res = call(http_request, srv, "POST", "/api/themes", bad)
        assert res.status == 400 and res.json() == {
            "success": False,
            "error": "Invalid request body",
        }
    big = {**theme("big"), "description": "x" * (300 << 10)}
    assert call(http_request, srv, "POST", "/api/themes", big).status == 413


def test_export_and_import(srv: Server, http_request: Any) -> None:
    t = call(http_request, srv, "POST", "/api/themes", theme()).json()["data"]
    res = call(http_request, srv, "GET", f"/api/themes/{t['id']}/export")
    assert res.status == 200
    assert res.headers["Content-Disposition"] == 'attachment; filename="ocean-dark.json"'
    doc = res.json()
    assert doc["version"] == "1.0.0" and doc["exportedBy"] == "observability-system"
    assert "id" not in doc["theme"] and "downloadCount" not in doc["theme"]
    assert doc["theme"]["colors"] == t["colors"]
    assert call(http_request, srv, "GET", "/api/themes/nope/export").status == 404

    doc["theme"]["name"] = "ocean-copy"
    res = call(http_request, srv, "POST", "/api/themes/import?authorId=u9", doc)
    assert res.status == 201
    imported = res.json()["data"]
    assert imported["isPublic"] is False and imported["authorId"] == "u9"
    assert imported["authorName"] == "Ann"
    res = call(http_request, srv, "POST", "/api/themes/import", {"nope": 1})
    assert res.status == 400 and res.json()["error"] == "Invalid import data - missing theme"


def test_sqlite_themes_survive_restart(
    tmp_path: Any, server_factory: Callable[..., Server], http_request: Any
) -> None:
    store = f"sqlite:///{tmp_path / 'keep.db'}"
    srv = server_factory(store=store)
    t = call(http_request, srv, "POST", "/api/themes", theme()).json()["data"]
    srv.stop()
    srv2 = server_factory(store=store)
    got = call(http_request, srv2, "GET", f"/api/themes/{t['id']}").json()
    assert got["data"]["colors"] == t["colors"] and got["data"]["tags"] == ["dark", "blue"]


def test_preflight_allows_put_and_delete(server: Server, http_request: Any) -> None:
    res = http_request(
        "OPTIONS",
        server.http_url + "/api/themes/abc",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "PUT"},
    )
    assert res.status == 204
    assert "PUT" in res.headers["Access-Control-Allow-Methods"]
    assert "DELETE" in res.headers["Access-Control-Allow-Methods"]
