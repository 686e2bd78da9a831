"""Where ``wsnotebook bench`` finds the suite (no benchmark is run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsnotebook.cli import bench as cli_bench

ROOT = Path(__file__).resolve().parents[3]


def test_bench_finds_the_suite_of_the_source_checkout_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no benchmarks/ here: the checkout's own suite is used
    assert cli_bench.find_bench_script() == ROOT / "benchmarks" / "run_all.py"


def test_bench_prefers_an_explicit_start_directory(tmp_path: Path) -> None:
    script = tmp_path / "benchmarks" / "run_all.py"
    script.parent.mkdir()
    script.write_text("")
    assert cli_bench.find_bench_script(tmp_path) == script
