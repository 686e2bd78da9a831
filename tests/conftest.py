"""Fixtures shared by every test suite (keep small: suite-specific ones live beside the suite).

* ``hook_event(i, **fields)`` -> a valid seed-style hook event with ``id == i`` and the three
  epoch-ms stamps (``timestamp``, ``server_received`` +1.5 ms, ``client_received`` +4 ms).
  Test modules that want the function itself import it: ``from _helpers import make_hook_event``
  (tests/_helpers.py; never ``from conftest import ...``, the name is ambiguous).
* ``shell`` -> a real IPython ``InteractiveShell`` with ``%load_ext wsnotebook`` and fake widget
  comms; at teardown the extension is unloaded (if the test has not), every widget stopped and
  the shell instance cleared.
* ``agent`` -> a ``FakeAgent`` (tests/_helpers.py) waiting for human-in-the-loop answers on
  127.0.0.1, closed at teardown.
* ``clients`` -> a list the test appends its ``wsnotebook.connect`` clients to; all are closed
  at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import FakeAgent, make_hook_event, use_fake_comms

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from wsnotebook.client import Client


@pytest.fixture
def hook_event() -> Callable[..., dict[str, Any]]:
    return make_hook_event


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    a = FakeAgent()
    yield a
    a.close()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """A list the test appends its clients to; every one is closed afterwards."""
    made: list[Client] = []
    yield made
    for c in made:
        c.close()


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    from IPython.core.interactiveshell import InteractiveShell

    import wsnotebook.widget as widget

    use_fake_comms(monkeypatch)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "wsnotebook")
    try:
        yield ip
    finally:
        if "ws" in ip.magics_manager.magics["line"]:
            ip.run_line_magic("unload_ext", "wsnotebook")
        widget.stop_all()
        InteractiveShell.clear_instance()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the widgets tests made while the interpreter is whole: ipywidgets' ``__del__``
    at interpreter teardown (module globals already None) prints an ignored AttributeError
    per widget left open."""
    import sys

    widgets = sys.modules.get("ipywidgets")
    if widgets is not None:
        try:
            widgets.Widget.close_all()
        except Exception:  # best effort at the very end of the run
            pass
