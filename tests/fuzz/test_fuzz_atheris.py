"""Coverage-guided fuzzing of the decoders with atheris (libFuzzer), briefly and bounded.

CI: 200k inputs or 10 s, whichever comes first (``-runs``/``-max_total_time``); the test itself
only requires that more than 1,000 inputs ran (a floor against a harness that dies early, not a
throughput check) and prints the figure.  ``WSN_FULL=1``: 5M inputs or 120 s.  Only
``wsnotebook`` modules are instrumented (pandas/numpy are imported first, uninstrumented);
measured on the 2-core dev box: 200,000 inputs in about 6 s (~33k inputs/s).
Skipped when atheris is not installed (an optional test dependency: ``pip install atheris``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FULL = os.environ.get("WSN_FULL") == "1"
SECONDS, RUNS = (120, 5_000_000) if FULL else (10, 200_000)
HARNESS = Path(__file__).with_name("atheris_harness.py")

pytestmark = pytest.mark.timeout(SECONDS + 120)


def test_libfuzzer_finds_no_undocumented_exception_in_the_decoders(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            f"-runs={RUNS}",
            f"-max_total_time={SECONDS}",
            "-max_len=4096",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    done = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    assert done and int(done.group(1)) > 1000, out[-2000:]
    print(f"atheris: {done.group(1)} inputs in <= {SECONDS}s")
