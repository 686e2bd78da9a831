"""Fixtures shared by the client integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wsnotebook.client import Client


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """A list the test appends its clients to; every one is closed afterwards."""
    made: list[Client] = []
    yield made
    for c in made:
        c.close()
