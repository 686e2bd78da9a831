"""Wire metering: the bytes each message and each connection really cost on the socket.

Owns :class:`WireMeter` (per-connection counters) and the two hooks that fill it from inside
``websockets``: a permessage-deflate extension that sees compressed frame sizes, and a
connection class that counts every TCP byte.  No I/O of its own.

Invariants: ``in_sizes``/``out_sizes`` get exactly one entry per data message (control frames
are skipped), in order, so the consumer pops one per message it reads or sends; the queues are
drained by the client per message, so they stay as short as the connection's receive queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, cast

from websockets.asyncio.client import ClientConnection
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import CTRL_OPCODES, Frame

__all__ = ["MeteredDeflate", "MeteredDeflateFactory", "WireMeter", "metered_connection"]


class WireMeter:
    """Per-connection byte counters filled from inside ``websockets``.

    ``in_sizes``/``out_sizes`` get one entry per data message: the sum of its frames' payload
    sizes on the wire (compressed when permessage-deflate is on).  ``tcp_in``/``tcp_out`` count
    every byte the TCP transport carried (handshake, frame headers and control frames included).
    """

    __slots__ = ("_acc_in", "_acc_out", "deflate", "in_sizes", "out_sizes", "tcp_in", "tcp_out")

    def __init__(self) -> None:
        self.deflate = False  # permessage-deflate negotiated
        self.in_sizes: deque[int] = deque()
        self.out_sizes: deque[int] = deque()
        self.tcp_in = 0
        self.tcp_out = 0
        self._acc_in = 0
        self._acc_out = 0

    def frame_in(self, frame: Frame) -> None:
        if frame.opcode in CTRL_OPCODES:
            return
        self._acc_in += len(frame.data)
        if frame.fin:
            self.in_sizes.append(self._acc_in)
            self._acc_in = 0

    def frame_out(self, frame: Frame) -> None:
        if frame.opcode in CTRL_OPCODES:
            return
        self._acc_out += len(frame.data)
        if frame.fin:
            self.out_sizes.append(self._acc_out)
            self._acc_out = 0


class MeteredDeflate(PerMessageDeflate):
    """permessage-deflate that reports compressed frame sizes to a :class:`WireMeter`."""

    meter: WireMeter

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.meter.frame_in(frame)
        return super().decode(frame, max_size=max_size)

    def encode(self, frame: Frame) -> Frame:
        out = super().encode(frame)
        self.meter.frame_out(out)
        return out


class MeteredDeflateFactory(ClientPerMessageDeflateFactory):
    """The client's permessage-deflate offer; the negotiated extension reports to ``meter``."""

    def __init__(self, meter: WireMeter) -> None:
        # websockets' default client settings (enable_client_permessage_deflate).
        super().__init__(client_max_window_bits=True, compress_settings={"memLevel": 5})
        self.meter = meter

    def process_response_params(self, params: Any, accepted_extensions: Any) -> PerMessageDeflate:
        ext = super().process_response_params(params, accepted_extensions)
        ext.__class__ = MeteredDeflate
        cast(MeteredDeflate, ext).meter = self.meter
        self.meter.deflate = True
        return ext


def metered_connection(meter: WireMeter) -> Callable[..., ClientConnection]:
    """A ``create_connection`` class for ``websockets.connect`` counting TCP bytes in ``meter``."""

    class MeteredConnection(ClientConnection):
        def __init__(self, protocol: Any, **kwargs: Any) -> None:
            super().__init__(protocol, **kwargs)
            original = protocol.data_to_send

            def data_to_send() -> list[bytes]:
                chunks: list[bytes] = original()
                for chunk in chunks:
                    meter.tcp_out += len(chunk)
                return chunks

            protocol.data_to_send = data_to_send

        def data_received(self, data: bytes) -> None:
            meter.tcp_in += len(data)
            super().data_received(data)

    return MeteredConnection
