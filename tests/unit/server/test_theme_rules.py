"""The seed's theme rules (theme.ts), pure: sanitising, validation codes, colours, export
shape, statistics, and the repositories' search semantics (db.ts getThemes)."""

from __future__ import annotations

from typing import Any

import pytest

from wsnotebook.server.theme_rules import (
    REQUIRED_COLORS,
    export_data,
    is_valid_color,
    new_theme,
    sanitize,
    stats,
    validate,
)
from wsnotebook.store.themes import MemoryThemes, SQLiteThemes, ThemeRepo


@pytest.mark.parametrize(
    "color",
    [
        "#abc",
        "#abcd",
        "#aabbcc",
        "#aabbccdd",
        "rgb(1,2,3)",
        "rgba(0 0 0 / 50%)",
        "hsl(1,2%,3%)",
        "hsla(1, 2%, 3%, .5)",
        "var(--primary)",
        "transparent",
        "currentColor",
        "GREY",
    ],
)
def test_valid_colors(color: str) -> None:
    assert is_valid_color(color)


@pytest.mark.parametrize("color", ["#ab", "#abcde", "abc", "rgb", "var(x)", "chartreuse", 3, None])
def test_invalid_colors(color: Any) -> None:
    assert not is_valid_color(color)


def test_sanitize_like_the_seed() -> None:
    out = sanitize(
        {
            "name": "My Theme_2!",
            "displayName": "  Hi ",
            "tags": ["a", "", 3, " "],
            "isPublic": "false",
            "authorId": 7,
        }
    )
    assert out["name"] == "mytheme_2"
    assert out["displayName"] == "Hi" and out["description"] == ""
    assert out["tags"] == ["a"] and out["isPublic"] is True  # JavaScript truthiness
    assert out["authorId"] == "7" and out["colors"] == {}
    assert sanitize({"displayName": "x"}, partial=True) == {"displayName": "x"}


def test_validation_codes() -> None:
    errors = validate({"name": "", "displayName": "", "colors": {"primary": "bad"}, "tags": [""]})
    codes = [(e["field"], e["code"]) for e in errors]
    assert codes[:3] == [
        ("name", "REQUIRED"),
        ("displayName", "REQUIRED"),
        ("colors.primary", "INVALID_COLOR"),
    ]
    assert ("tags", "INVALID_FORMAT") in codes
    assert validate({"name": "A B", "displayName": "x", "colors": None})[0]["code"] == (
        "INVALID_FORMAT"
    )
    good = {"name": "a", "displayName": "A", "colors": {k: "#000" for k in REQUIRED_COLORS}}
    assert validate(good) == []


def test_new_theme_export_and_stats() -> None:
    t = new_theme(sanitize({"name": "a", "displayName": "A", "colors": {}, "isPublic": 1}))
    assert len(t["id"]) == 16 and t["createdAt"] == t["updatedAt"]
    doc = export_data(t)
    assert set(doc) == {"version", "theme", "exportedAt", "exportedBy"}
    assert "id" not in doc["theme"] and doc["exportedAt"].endswith("Z")
    assert stats([t, {**t, "isPublic": False, "downloadCount": 3, "rating": 4}]) == {
        "totalThemes": 2,
        "publicThemes": 1,
        "privateThemes": 1,
        "totalDownloads": 3,
        "averageRating": 2.0,
    }
    assert stats([])["averageRating"] == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_repositories(kind: str, tmp_path: Any) -> None:
    repo: ThemeRepo = MemoryThemes() if kind == "memory" else SQLiteThemes(str(tmp_path / "x.db"))
    base = {
        "colors": {},
        "tags": [],
        "downloadCount": 0,
        "rating": 0,
        "ratingCount": 0,
        "authorName": None,
        "description": "",
    }
    for i, (name, public) in enumerate([("b", True), ("a", False), ("c", True)]):
        repo.insert(
            {
                **base,
                "id": name * 2,
                "name": name,
                "displayName": name.upper(),
                "isPublic": public,
                "authorId": "u",
                "createdAt": i,
                "updatedAt": i,
            }
        )
    assert [t["name"] for t in repo.search({})] == ["c", "a", "b"]  # created, desc
    assert [
        t["name"] for t in repo.search({"isPublic": True, "sortBy": "name", "sortOrder": "asc"})
    ] == ["b", "c"]
    assert [t["name"] for t in repo.search({"query": "A"})] == ["a"]
    assert [t["name"] for t in repo.search({"limit": 1, "offset": 1})] == ["a"]
    assert repo.update("aa", {"displayName": "Z", "name": "nope"}) is True
    assert repo.update("aa", {"name": "nope"}) is False
    assert repo.get("aa")["displayName"] == "Z"  # type: ignore[index]
    repo.count_download("bb")
    assert repo.get("bb")["downloadCount"] == 1  # type: ignore[index]
    assert repo.delete("bb") and not repo.delete("bb") and repo.get("bb") is None
