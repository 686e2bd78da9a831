"""Host header matching (DNS-rebinding guard): pure functions of hostcheck."""

from __future__ import annotations

import pytest

from wsnotebook.server.hostcheck import HostPolicy, host_name, normalise_allowed_hosts


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:4000", "localhost"),
        ("127.0.0.1:65535", "127.0.0.1"),
        ("[::1]:8888", "::1"),
        ("[::1]", "::1"),
        ("evil.example:80", "evil.example"),
        ("::1", None),  # an IPv6 literal must be bracketed
        ("[::1", None),
        ("[::1]x", None),
        ("localhost:99999", None),
        ("localhost:x", None),
        ("localhost:", None),
        (":80", None),
        ("", None),
    ],
)
def test_host_name_strips_port_and_brackets_and_refuses_malformed_values(
    value: str, name: str | None
) -> None:
    assert host_name(value) == name


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:4000", "127.0.0.1:1", "127.8.9.10:80", "[::1]:4000", "[::1]", None],
)
def test_a_loopback_bind_accepts_loopback_names_on_any_port_and_a_missing_host(
    host: str | None,
) -> None:
    assert HostPolicy(bind_host="127.0.0.1", allowed_hosts=None).allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:4000",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.0.0.1:4000",
        "",
        "[::1",
        "localhost:99999",
    ],
)
def test_a_loopback_bind_refuses_other_names(host: str) -> None:
    assert not HostPolicy(bind_host="127.0.0.1", allowed_hosts=None).allows(host)


def test_configured_names_are_accepted_case_insensitively_with_any_port() -> None:
    policy = HostPolicy(bind_host="localhost", allowed_hosts=["Notebook.Test:9999"])
    assert policy.allows("notebook.test:4000")
    assert policy.allows("NOTEBOOK.TEST")
    assert not policy.allows("other.test")
    assert policy.allows("localhost:4000")


def test_a_non_loopback_bind_checks_only_when_names_are_given() -> None:
    assert HostPolicy(bind_host="0.0.0.0", allowed_hosts=None).allows("anything.example")
    policy = HostPolicy(bind_host="0.0.0.0", allowed_hosts=["box.lan"])
    assert policy.allows("box.lan:4000")
    assert policy.allows("127.0.0.1:4000")  # loopback names stay accepted
    assert not policy.allows("evil.example")
    bound = HostPolicy(bind_host="192.0.2.7", allowed_hosts=[])
    assert bound.allows("192.0.2.7:4000")  # the bind address names the server itself
    assert not bound.allows("evil.example")


def test_an_ipv6_loopback_bind_is_a_loopback_bind() -> None:
    policy = HostPolicy(bind_host="::1", allowed_hosts=None)
    assert policy.enabled
    assert policy.allows("[::1]:4000")
    assert not policy.allows("evil.example")


def test_allowed_hosts_are_normalised_and_bad_ones_refused() -> None:
    assert normalise_allowed_hosts(["B.test", "a.test:80", "[::2]", "b.test"]) == (
        "::2",
        "a.test",
        "b.test",
    )
    for bad in (["a.test:x"], [""], [3]):
        with pytest.raises(ValueError):
            normalise_allowed_hosts(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        normalise_allowed_hosts("a.test")
