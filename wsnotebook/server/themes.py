"""The seed dashboard's theme API on the server (a mixin of :class:`~.server.Server`).

Endpoints (replies ``{"success": bool, "data"?: ..., "error"?: str, "message"?: str,
"validationErrors"?: [...]}`` as the seed's, documented in docs/protocol.md):

* ``POST /api/themes``: create; 201, or 400 ``Validation failed`` / ``Theme name already
  exists`` (with ``validationErrors``) / ``Invalid request body``.
* ``GET /api/themes``: search (``query``, ``isPublic``, ``authorId``, ``sortBy``,
  ``sortOrder``, ``limit``, ``offset``); public themes only unless ``authorId`` is given.
* ``GET /api/themes/stats``; ``POST /api/themes/import`` (201 / 400 ``Invalid import data -
  missing theme``; imported themes are private, ``authorName`` ``Imported`` by default).
* ``GET /api/themes/<id>`` (404 ``Theme not found``; a public theme's ``downloadCount`` is
  counted), ``PUT`` (partial update, ``name`` cannot change; 404 / 400), ``DELETE`` (404; 403
  when ``?authorId=`` is not the theme's), ``GET /api/themes/<id>/export`` (the export
  document itself with ``Content-Disposition: attachment``; 404).

Bounds: bodies over :data:`~.theme_rules.MAX_THEME_BYTES` get 413; ``limit`` 0..10,000 and
``offset`` 0..10,000,000 (400 otherwise).  Storage runs in a worker thread (never on the loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from ..errors import ProtocolError
from ..events import encode_json
from ..store import Store
from .theme_rules import MAX_THEME_BYTES, export_data, new_theme, sanitize, stats, validate

__all__ = ["ThemesMixin"]

JSON = "application/json"
_NOT_FOUND = {"success": False, "error": "Theme not found"}


def _reply(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=encode_json(body), content_type=JSON, headers=headers or None
    )


def _query_int(request: web.Request, name: str, hi: int) -> int | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ProtocolError(f"{name}: expected integer, got {raw[:50]!r}") from None
    if not 0 <= value <= hi:
        raise ProtocolError(f"{name}: must be in 0..{hi}, got {value}")
    return value


class ThemesMixin:
    """``/api/themes`` for :class:`~.server.Server` (which provides ``store``)."""

    store: Store

    def _add_theme_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/themes", self._theme_create)
        r.add_get("/api/themes", self._theme_search)
        r.add_get("/api/themes/stats", self._theme_stats)  # before /api/themes/{id}
        r.add_post("/api/themes/import", self._theme_import)
        r.add_get("/api/themes/{theme_id}/export", self._theme_export)
        r.add_get("/api/themes/{theme_id}", self._theme_get)
        r.add_put("/api/themes/{theme_id}", self._theme_update)
        r.add_delete("/api/themes/{theme_id}", self._theme_delete)

    async def _repo(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def _theme_body(self, request: web.Request) -> Any:
        """The JSON body, or a ready reply (413 too large, 400 not JSON)."""
        length = request.content_length
        if length is not None and length > MAX_THEME_BYTES:
            return _reply({"success": False, "error": "Theme too large"}, 413)
        raw = await request.read()
        if len(raw) > MAX_THEME_BYTES:
            return _reply({"success": False, "error": "Theme too large"}, 413)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _reply({"success": False, "error": "Invalid request body"}, 400)

    async def _create(self, data: Any) -> web.Response:
        if not isinstance(data, dict):
            return _reply({"success": False, "error": "Invalid request body"}, 400)
        clean = sanitize(data)
        errors = validate(clean)
        if errors:
            body = {"success": False, "error": "Validation failed", "validationErrors": errors}
            return _reply(body, 400)
        repo = self.store.themes
        existing = await self._repo(repo.all)
        if any(t.get("name") == clean["name"] for t in existing):
            error = {
                "field": "name",
                "message": "A theme with this name already exists",
                "code": "DUPLICATE",
            }
            body = {
                "success": False,
                "error": "Theme name already exists",
                "validationErrors": [error],
            }
            return _reply(body, 400)
        theme = await self._repo(repo.insert, new_theme(clean))
        body = {"success": True, "data": theme, "message": "Theme created successfully"}
        return _reply(body, 201)

    async def _theme_create(self, request: web.Request) -> web.StreamResponse:
        data = await self._theme_body(request)
        return data if isinstance(data, web.Response) else await self._create(data)

    async def _theme_import(self, request: web.Request) -> web.StreamResponse:
        data = await self._theme_body(request)
        if isinstance(data, web.Response):
            return data
        theme = data.get("theme") if isinstance(data, dict) else None
        if not isinstance(theme, dict):
            return _reply({"success": False, "error": "Invalid import data - missing theme"}, 400)
        imported = {
            **theme,
            "authorId": request.query.get("authorId") or None,
            "authorName": theme.get("authorName") or "Imported",
            "isPublic": False,
        }
        return await self._create(imported)

    async def _theme_search(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            limit = _query_int(request, "limit", 10_000)
            offset = _query_int(request, "offset", 10_000_000)
        except ProtocolError as exc:
            return _reply({"success": False, "error": str(exc)}, 400)
        author = q.get("authorId") or None
        query = {
            "query": q.get("query") or None,
            # the seed lists public themes only unless an author's are asked for
            "isPublic": None if author else True,
            "authorId": author,
            "sortBy": q.get("sortBy") or None,
            "sortOrder": q.get("sortOrder") or None,
            "limit": limit,
            "offset": offset,
        }
        themes = await self._repo(self.store.themes.search, query)
        return _reply({"success": True, "data": themes})

    async def _theme_stats(self, request: web.Request) -> web.StreamResponse:
        themes = await self._repo(self.store.themes.all)
        return _reply({"success": True, "data": stats(themes)})

    async def _theme_get(self, request: web.Request) -> web.StreamResponse:
        repo = self.store.themes
        theme = await self._repo(repo.get, request.match_info["theme_id"])
        if theme is None:
            return _reply(_NOT_FOUND, 404)
        if theme.get("isPublic"):
            await self._repo(repo.count_download, theme["id"])
        return _reply({"success": True, "data": theme})

    async def _theme_update(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["theme_id"]
        data = await self._theme_body(request)
        if isinstance(data, web.Response):
            return data
        if not isinstance(data, dict):
            return _reply({"success": False, "error": "Invalid request body"}, 400)
        repo = self.store.themes
        theme = await self._repo(repo.get, ident)
        if theme is None:
            return _reply(_NOT_FOUND, 404)
        changes = sanitize(data, partial=True)
        changes.pop("name", None)  # the name cannot change after creation
        errors = validate({**theme, **changes})
        if errors:
            body = {"success": False, "error": "Validation failed", "validationErrors": errors}
            return _reply(body, 400)
        changes["updatedAt"] = int(time.time() * 1000)
        await self._repo(repo.update, ident, changes)
        updated = await self._repo(repo.get, ident)
        if updated is None:
            return _reply(_NOT_FOUND, 404)
        return _reply({"success": True, "data": updated, "message": "Theme updated successfully"})

    async def _theme_delete(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["theme_id"]
        repo = self.store.themes
        theme = await self._repo(repo.get, ident)
        if theme is None:
            return _reply(_NOT_FOUND, 404)
        author = request.query.get("authorId")
        if author and theme.get("authorId") != author:
            body = {"success": False, "error": "Unauthorized - you can only delete your own themes"}
            return _reply(body, 403)
        if not await self._repo(repo.delete, ident):
            return _reply(_NOT_FOUND, 404)
        return _reply({"success": True, "message": "Theme deleted successfully"})

    async def _theme_export(self, request: web.Request) -> web.StreamResponse:
        theme = await self._repo(self.store.themes.get, request.match_info["theme_id"])
        if theme is None:
            return _reply(_NOT_FOUND, 404)
        disposition = f'attachment; filename="{theme["name"]}.json"'
        return _reply(export_data(theme), 200, **{"Content-Disposition": disposition})
