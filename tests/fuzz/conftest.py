"""Fuzz-suite fixtures.

Hypothesis checks that the global ``random`` state is unchanged across every strategy draw and
otherwise warns "Do not use the `random` module inside strategies" (HypothesisDeprecationWarning,
an error in these modules).  Our strategies never use it, but websockets draws each keepalive
ping payload from the global ``random.getrandbits`` — on the wsnotebook background loop thread
(clients) and on the keepalive threads of the ``websockets.sync`` peers the tests run — so a ping
sent while the test thread is drawing trips the check.  ``private_websockets_rng`` gives those
modules a private :class:`random.Random` for the duration of each fuzz module.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator

import pytest

# websockets modules that call the global ``random``: ``ping()`` payloads (asyncio and sync
# connections) and the reconnect backoff of ``websockets.client``
WEBSOCKETS_RANDOM_USERS = (
    "websockets.asyncio.connection",
    "websockets.sync.connection",
    "websockets.client",
)


@pytest.fixture(scope="module", autouse=True)
def private_websockets_rng() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in WEBSOCKETS_RANDOM_USERS:
            module = importlib.import_module(name)
            if getattr(module, "random", None) is random:
                mp.setattr(module, "random", random.Random())
        yield
