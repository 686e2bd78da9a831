"""Fixtures of the store integration tests: ``redis_server`` (a fresh ``redis-server`` per test,
AOF on, on a free loopback port; see tests/_redis.py), removed with its directory at teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _redis import local_redis

from wsnotebook.store.redis_local import LocalRedis


@pytest.fixture
def redis_server() -> Iterator[LocalRedis]:
    server = local_redis()
    try:
        yield server
    finally:
        server.close()
