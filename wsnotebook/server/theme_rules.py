"""The seed dashboard's theme rules (pure): sanitising, validation, export and statistics.

Mirrors the seed server's ``theme.ts``: :func:`sanitize` (``name`` lower-cased and stripped to
``[a-z0-9-_]``, strings trimmed, ``tags`` kept when non-empty strings, ``isPublic`` by
JavaScript truthiness), :func:`validate` (``name`` required and ``^[a-z0-9-_]+$``,
``displayName`` required, each of :data:`REQUIRED_COLORS` required and a valid CSS colour:
``#rgb``/``#rgba``/``#rrggbb``/``#rrggbbaa``, ``rgb()``/``rgba()``, ``hsl()``/``hsla()``,
``var(--x)`` or one of :data:`NAMED_COLORS`), each error ``{field, message, code}`` with
``code`` in ``REQUIRED`` / ``INVALID_FORMAT`` / ``INVALID_COLOR`` / ``DUPLICATE``;
:func:`new_theme`, :func:`export_data` and :func:`stats`.

Bounds: a theme body is at most :data:`MAX_THEME_BYTES` (the server answers 413 beyond);
strings are cut to :data:`MAX_TEXT` characters, at most :data:`MAX_TAGS` tags are kept.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "MAX_TAGS",
    "MAX_TEXT",
    "MAX_THEME_BYTES",
    "NAMED_COLORS",
    "REQUIRED_COLORS",
    "export_data",
    "is_valid_color",
    "new_theme",
    "sanitize",
    "stats",
    "validate",
]

MAX_THEME_BYTES = 256 << 10
MAX_TEXT = 10_000
MAX_TAGS = 100
REQUIRED_COLORS = (
    "primary",
    "primaryHover",
    "primaryLight",
    "primaryDark",
    "bgPrimary",
    "bgSecondary",
    "bgTertiary",
    "bgQuaternary",
    "textPrimary",
    "textSecondary",
    "textTertiary",
    "textQuaternary",
    "borderPrimary",
    "borderSecondary",
    "borderTertiary",
    "accentSuccess",
    "accentWarning",
    "accentError",
    "accentInfo",
    "shadow",
    "shadowLg",
    "hoverBg",
    "activeBg",
    "focusRing",
)
NAMED_COLORS = frozenset(
    {
        "transparent",
        "black",
        "white",
        "red",
        "green",
        "blue",
        "yellow",
        "cyan",
        "magenta",
        "gray",
        "grey",
        "inherit",
        "currentcolor",
    }
)
_NAME = re.compile(r"^[a-z0-9\-_]+$")
_HEX = re.compile(r"^#([A-Fa-f0-9]{3,4}|[A-Fa-f0-9]{6}|[A-Fa-f0-9]{8})$")
_FUNC = re.compile(r"^(rgba?|hsla?)\(.+\)$", re.DOTALL)
_VAR = re.compile(r"^var\(--.+\)$", re.DOTALL)

Theme = dict[str, Any]


def _js_str(value: Any) -> str | None:
    """``value?.toString()`` as the seed computes it (None for null/undefined)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join(_js_str(v) or "" for v in value)
    return str(value)[:MAX_TEXT]


def _truthy(value: Any) -> bool:
    """JavaScript truthiness (``[]`` and ``{}`` are true, ``0`` and ``""`` false)."""
    if isinstance(value, (list, dict)):
        return True
    return bool(value)


def sanitize(data: dict[str, Any], *, partial: bool = False) -> Theme:
    """The seed's ``sanitizeTheme``.  ``partial``: only the fields present in ``data`` (an
    update), instead of every field with its default."""
    out: Theme = {}

    def wanted(key: str) -> bool:
        return not partial or key in data

    if wanted("name"):
        out["name"] = re.sub(r"[^a-z0-9\-_]", "", (_js_str(data.get("name")) or "").lower())
    if wanted("displayName"):
        out["displayName"] = (_js_str(data.get("displayName")) or "").strip()
    if wanted("description"):
        out["description"] = (_js_str(data.get("description")) or "").strip()
    if wanted("colors"):
        colors = data.get("colors")
        out["colors"] = colors if isinstance(colors, dict) else {}
    if wanted("isPublic"):
        out["isPublic"] = _truthy(data.get("isPublic"))
    if wanted("tags"):
        tags = data.get("tags")
        out["tags"] = (
            [t[:MAX_TEXT] for t in tags if isinstance(t, str) and t.strip()][:MAX_TAGS]
            if isinstance(tags, list)
            else []
        )
    if wanted("authorId"):
        out["authorId"] = _js_str(data.get("authorId")) or None
    if wanted("authorName"):
        out["authorName"] = _js_str(data.get("authorName")) or None
    return out


def is_valid_color(color: Any) -> bool:
    if not isinstance(color, str):
        return False
    return bool(
        _HEX.match(color)
        or _FUNC.match(color)
        or _VAR.match(color)
        or color.lower() in NAMED_COLORS
    )


def _error(field: str, message: str, code: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": code}


def validate(theme: Theme) -> list[dict[str, str]]:
    """The seed's ``validateTheme``: every problem, in the seed's order."""
    errors: list[dict[str, str]] = []
    name = theme.get("name")
    if not name:
        errors.append(_error("name", "Theme name is required", "REQUIRED"))
    elif not isinstance(name, str) or not _NAME.match(name):
        errors.append(
            _error(
                "name",
                "Theme name must contain only lowercase letters, numbers, hyphens, and underscores",
                "INVALID_FORMAT",
            )
        )
    if not theme.get("displayName"):
        errors.append(_error("displayName", "Display name is required", "REQUIRED"))
    colors = theme.get("colors")
    if colors is None:
        errors.append(_error("colors", "Theme colors are required", "REQUIRED"))
    else:
        colors = colors if isinstance(colors, dict) else {}
        for key in REQUIRED_COLORS:
            color = colors.get(key)
            if not color:
                errors.append(_error(f"colors.{key}", f"Color {key} is required", "REQUIRED"))
            elif not is_valid_color(color):
                errors.append(
                    _error(f"colors.{key}", f"Invalid color format for {key}", "INVALID_COLOR")
                )
    tags = theme.get("tags")
    if isinstance(tags, list) and any(not isinstance(t, str) or not t for t in tags):
        errors.append(_error("tags", "All tags must be non-empty strings", "INVALID_FORMAT"))
    return errors


def new_theme(sanitized: Theme) -> Theme:
    """A stored theme from sanitised, validated fields (new id, stamps, zero counters)."""
    now = int(time.time() * 1000)
    return {
        "id": secrets.token_hex(8),
        "name": sanitized["name"],
        "displayName": sanitized["displayName"],
        "description": sanitized.get("description", ""),
        "colors": sanitized["colors"],
        "isPublic": bool(sanitized.get("isPublic")),
        "authorId": sanitized.get("authorId"),
        "authorName": sanitized.get("authorName"),
        "createdAt": now,
        "updatedAt": now,
        "tags": sanitized.get("tags") or [],
        "downloadCount": 0,
        "rating": 0,
        "ratingCount": 0,
    }


def export_data(theme: Theme) -> dict[str, Any]:
    """The seed's export document: the theme without its server-side fields."""
    dropped = ("id", "authorId", "downloadCount", "rating", "ratingCount", "createdAt", "updatedAt")
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "version": "1.0.0",
        "theme": {k: v for k, v in theme.items() if k not in dropped},
        "exportedAt": stamp,
        "exportedBy": "observability-system",
    }


def stats(themes: list[Theme]) -> dict[str, Any]:
    """The seed's ``getThemeStats``."""
    public = sum(1 for t in themes if t.get("isPublic"))
    n = len(themes)
    return {
        "totalThemes": n,
        "publicThemes": public,
        "privateThemes": n - public,
        "totalDownloads": sum(int(t.get("downloadCount") or 0) for t in themes),
        "averageRating": (sum(float(t.get("rating") or 0) for t in themes) / n) if n else 0,
    }
