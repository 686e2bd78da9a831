"""A wsnotebook server under a lowered descriptor limit (run as a subprocess by
test_fault_fd_exhaustion.py).

argv[1]: JSON ``{"nofile": N, "free": F or null, "serve": {...serve() keywords}}``.  The soft
RLIMIT_NOFILE is set to N before wsnotebook is imported (the parent also sets
``WSNOTEBOOK_RAISE_NOFILE=0`` so the server leaves it there).  With ``free``, descriptors are
then held open (``/dev/null``) until only F are left, behind the server's back: its cap, sized
at start, no longer protects it and ``accept()`` runs out of descriptors.  Prints one JSON line
``{"port": ..., "nofile": ..., "held": ...}``, serves until stdin closes, then stops.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def main() -> None:
    cfg = json.loads(sys.argv[1])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (cfg["nofile"], hard))
    import wsnotebook as wsn

    server = wsn.serve(port=0, **cfg.get("serve", {}))
    held: list[int] = []
    in_use = len(os.listdir("/proc/self/fd"))
    if cfg.get("free") is not None:
        for _ in range(max(0, cfg["nofile"] - in_use - cfg["free"])):
            held.append(os.open(os.devnull, os.O_RDONLY))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    info = {"port": server.port, "nofile": nofile, "held": len(held), "in_use": in_use}
    print(json.dumps(info), flush=True)
    sys.stdin.read()
    for fd in held:
        os.close(fd)
    server.stop()


if __name__ == "__main__":
    main()
