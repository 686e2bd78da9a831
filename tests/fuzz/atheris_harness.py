"""libFuzzer (atheris) harness over the sans-I/O decoders; run by ``test_fuzz_atheris.py``.

Usage: ``python tests/fuzz/atheris_harness.py -runs=20000 -max_total_time=10``.  Any exception
that is not a documented :class:`~wsnotebook.errors.WsnError` crashes the run (libFuzzer reports
the input and exits non-zero).
"""

from __future__ import annotations

import sys

import atheris
import pandas  # noqa: F401  (imported uninstrumented first: only wsnotebook is instrumented)

with atheris.instrument_imports(include=["wsnotebook"]):
    from wsnotebook.errors import WsnError
    from wsnotebook.events import decode_events
    from wsnotebook.protocol import ResumeState, parse_client_message, parse_server_message


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 3)
    raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    text = raw.decode("utf-8", "surrogateescape")  # str path, may carry lone surrogates
    for payload in (raw, text):
        try:
            if which == 0:
                decode_events(payload, max_event_bytes=512, max_batch=8)
            elif which == 1:
                parse_client_message(payload)
            else:
                msg = parse_server_message(payload)
                if msg.type == "initial":
                    state = ResumeState()
                    state.on_events([{"id": 5}])
                    state.on_initial(msg)
        except WsnError:
            pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
