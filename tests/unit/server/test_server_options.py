"""ServerOptions: every serve() option checked in one place, normalised, comparable."""

from __future__ import annotations

import math
from typing import Any

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.server import ServerOptions
from wsnotebook.server.metrics import Counter, ServerCounters, prometheus


def test_defaults_validate_and_normalise_numbers_and_origins() -> None:
    o = ServerOptions.validate(heartbeat_interval=5, connect_rate=50, allowed_origins=["a", "b"])
    assert o == ServerOptions(allowed_origins=("a", "b"))
    assert isinstance(o.heartbeat_interval, float) and isinstance(o.connect_rate, float)
    assert o.server_kwargs()["allowed_origins"] == ("a", "b")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"port": 70000}, "port"),
        ({"initial_limit": -1}, "initial_limit"),
        ({"max_event_bytes": 10}, "max_event_bytes"),
        ({"max_message_bytes": "big"}, "max_message_bytes"),
        ({"max_batch_events": 0}, "max_batch_events"),
        ({"max_connections": True}, "max_connections"),
        ({"queue_size": 0}, "queue_size"),
        ({"max_queue_bytes": 1 << 40}, "max_queue_bytes"),
        ({"heartbeat_interval": -1}, "heartbeat_interval"),
        ({"heartbeat_interval": math.nan}, "heartbeat_interval"),
        ({"connect_rate": math.inf}, "connect_rate"),
        ({"connect_rate": "fast"}, "connect_rate"),
        ({"connect_burst": 0}, "connect_burst"),
        ({"host": 1}, "host"),
        ({"token": 5}, "token"),
        ({"keyfile": "k.pem"}, "keyfile"),
    ],
)
def test_an_out_of_bounds_option_raises_config_error_naming_it(
    options: dict[str, Any], name: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        ServerOptions.validate(**options)


def test_changed_names_the_options_that_differ_sorted() -> None:
    a = ServerOptions.validate()
    b = ServerOptions.validate(queue_size=10, initial_limit=5)
    assert a.changed(b) == ["initial_limit", "queue_size"]
    assert a.changed(a) == []


def test_counters_snapshot_counts_closed_connections_and_prometheus_lists_kinds() -> None:
    counters = ServerCounters()
    counters.closed_events_out = 3
    counters.note_sent(10)
    counters.errors.bump("store")
    snap = counters.snapshot([])
    assert snap["events_out"] == 3 and snap["messages_out"] == 1 and snap["bytes_out"] == 10
    text = prometheus({**snap, "uptime_s": 1.0})
    assert 'wsnotebook_errors{kind="store"} 1' in text
    assert "# TYPE wsnotebook_connections gauge" in text
    assert isinstance(counters.errors, Counter)


def test_prometheus_text_carries_admission_and_store_byte_figures_when_present() -> None:
    snap = ServerCounters().snapshot(set())
    metrics = {
        **snap,
        "uptime_s": 1.0,
        "open_connections": 3,
        "admission": {"cap": 4032, "idle": 1, "shed_idle": 7, "accept_errors": 2},
        "store": {"retained_bytes": 1234, "retain_bytes": 268435456, "kind": "memory"},
    }
    text = prometheus(metrics)
    assert "# TYPE wsnotebook_open_connections gauge\nwsnotebook_open_connections 3" in text
    assert "# TYPE wsnotebook_admission_cap gauge\nwsnotebook_admission_cap 4032" in text
    assert "# TYPE wsnotebook_admission_shed_idle counter\nwsnotebook_admission_shed_idle 7" in text
    assert "wsnotebook_admission_accept_errors 2" in text
    assert (
        "# TYPE wsnotebook_store_retained_bytes gauge\nwsnotebook_store_retained_bytes 1234" in text
    )
    assert "kind" not in text.split("wsnotebook_store_retain_bytes")[-1]
