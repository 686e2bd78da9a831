"""%ws pending / %ws respond against a real loopback server and a fake agent."""

from __future__ import annotations

import pytest
from _helpers import FakeAgent, hitl_event
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

pytestmark = pytest.mark.timeout(90)


def test_pending_and_respond_magics(shell: InteractiveShell) -> None:
    agent = FakeAgent()
    try:
        server = shell.run_line_magic("ws", "serve --port 0")
        asked = server.publish(hitl_event(agent.url, "choice", choices=["red", "blue"]))[0]
        table = shell.run_line_magic("ws", "pending")
        assert list(table["id"]) == [asked["id"]]
        with pytest.raises(UsageError, match="not one of"):
            shell.run_line_magic("ws", f"respond {asked['id']} --choice green")
        with pytest.raises(UsageError):
            shell.run_line_magic("ws", f"respond {asked['id']}")  # no answer given
        with pytest.raises(UsageError, match="not a wsnotebook"):
            shell.run_line_magic("ws", f"respond {asked['id']} --yes --on nothing_here")
        event = shell.run_line_magic("ws", f"respond {asked['id']} --choice blue --on ws_server")
        assert event["humanInTheLoopStatus"]["response"]["choice"] == "blue"
        assert agent.wait(1)[0]["choice"] == "blue"
        assert shell.run_line_magic("ws", "pending ws_server").empty
        with pytest.raises(UsageError, match="already answered"):
            shell.run_line_magic("ws", f"respond {asked['id']} --choice red")
    finally:
        agent.close()
