"""A ``redis-server`` for the tests, imported as ``from _redis import ...`` (tests/ is on
sys.path, see tests/_helpers.py).

``local_redis(**kw)`` starts :class:`wsnotebook.store.redis_local.LocalRedis` (its own
``redis-server`` on a free 127.0.0.1 port in a temporary directory, AOF with ``appendfsync
always``), or skips the test when ``redis-server`` is not installed, except under ``CI=true``,
where ``make setup`` (scripts/install-redis.sh) installed it and its absence is a failure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from wsnotebook.store.redis_local import LocalRedis, redis_server_path


def require_redis_server() -> None:
    if redis_server_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "redis-server is missing: make setup (scripts/install-redis.sh) installs it"
            )
        pytest.skip("redis-server is not installed (make setup installs it)")


def local_redis(**kwargs: Any) -> LocalRedis:
    require_redis_server()
    return LocalRedis(**kwargs)
