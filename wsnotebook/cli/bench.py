"""``wsnotebook bench``: run the benchmark suite, ``benchmarks/run_all.py``, in a child process.

The suite lives in the source checkout, not in the installed package: it is looked for in the
current directory, then next to the package's source tree; not found is a usage error (exit 2).
``--quick`` and every other argument pass through (a leading ``--`` is dropped); the exit code
is the suite's own, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from .common import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["cmd_bench", "find_bench_script"]

#: The source checkout this package was imported from (``<root>/wsnotebook/cli/bench.py``).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def find_bench_script(start: Path | None = None) -> Path | None:
    """``benchmarks/run_all.py`` in the current directory or the source checkout."""
    candidates = [Path.cwd(), SOURCE_ROOT]
    if start is not None:
        candidates.insert(0, start)
    for base in candidates:
        script = base / "benchmarks" / "run_all.py"
        if script.is_file():
            return script
    return None


def cmd_bench(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    script = find_bench_script()
    if script is None:
        print(
            "wsnotebook bench: benchmarks/run_all.py not found (run from a source checkout)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    cmd = [sys.executable, str(script)]
    if args.quick:
        cmd.append("--quick")
    cmd.extend(a for a in args.rest if a != "--")
    print("running: " + " ".join(cmd), file=out, flush=True)
    try:
        return subprocess.call(cmd, cwd=str(script.parent.parent))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
