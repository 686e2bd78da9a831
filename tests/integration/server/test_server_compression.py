"""permessage-deflate between our server and client: negotiated on request, counted on the wire."""

from __future__ import annotations

import pytest

from wsnotebook.client import connect


def _events(make_event, n: int) -> list[dict]:
    big = "line of repetitive tool output\n" * 40
    return [
        make_event(payload={"tool_name": "Bash", "tool_response": {"stdout": big, "i": i}})
        for i in range(n)
    ]


@pytest.mark.parametrize("server_compression", [True, False])
def test_deflate_is_negotiated_only_when_both_sides_want_it(
    server_factory, make_event, server_compression
):
    server = server_factory(compression=server_compression)
    client = connect(server.url, compression=True, batch=None)
    try:
        client.wait_state("open", timeout=10)
        server.publish(_events(make_event, 50))
        assert client.wait_for(50, timeout=20)
        m = client.metrics()
        assert bool(m["deflate"]) is server_compression
        if server_compression:
            # ~1.2 kB of repetitive text per event must shrink a lot on the wire
            assert m["bytes_in_wire"] < 0.5 * m["bytes_in_decoded"]
            assert m["compression_ratio"] < 0.5
        else:
            assert m["bytes_in_wire"] == m["bytes_in_decoded"]
        assert len(client.frame) == 50
    finally:
        client.close()


def test_compressed_and_plain_clients_share_one_broadcast(server_factory, make_event):
    server = server_factory(compression=True)
    zipped = connect(server.url, compression=True, batch=None)
    plain = connect(server.url, compression=False, batch=None)
    try:
        zipped.wait_state("open", timeout=10)
        plain.wait_state("open", timeout=10)
        server.publish(_events(make_event, 200))
        assert zipped.wait_for(200, timeout=20)
        assert plain.wait_for(200, timeout=20)
        assert zipped.frame.df["id"].tolist() == plain.frame.df["id"].tolist()
        assert zipped.metrics()["deflate"] is True
        assert not plain.metrics()["deflate"]
    finally:
        zipped.close()
        plain.close()
