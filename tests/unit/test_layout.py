"""The package layout stays as docs/design.md draws it: imports point down the layers, modules
and classes stay small, and no module imports another module's private names."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "wsnotebook"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 400


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")
def test_the_import_contract_holds_for_the_package() -> None:
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")
def test_the_import_contract_fails_on_an_upward_import(tmp_path: Path) -> None:
    """The contract can fail: the event model importing the CLI (a layer far above) breaks it."""
    shutil.copytree(PACKAGE, tmp_path / "wsnotebook", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "wsnotebook" / "events" / "model.py"
    model.write_text(model.read_text() + "\nfrom ..cli import main as _upward  # noqa\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "wsnotebook.events is not allowed to import wsnotebook.cli" in proc.stdout


def test_no_module_is_over_600_lines_and_no_class_over_400() -> None:
    too_big = []
    for path in _modules():
        text = path.read_text()
        lines = text.count("\n")
        name = path.relative_to(ROOT)
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_big.append(f"{name}: class {node.name} {size} lines")
    assert not too_big, "\n".join(too_big)


def test_no_module_imports_another_modules_private_names() -> None:
    """``from .x import _name`` reaches into x's internals; a shared name is a public name of an
    internal module instead.  (``__version__``-style dunders are fine.)"""
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offenders.append(f"{path.relative_to(ROOT)}: {alias.name}")
    assert not offenders, "\n".join(offenders)
