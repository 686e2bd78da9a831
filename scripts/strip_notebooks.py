"""Strip outputs and execution counts from notebooks (so they are committed clean).

Usage::

    python scripts/strip_notebooks.py [--check] [NOTEBOOK ...]   # default: notebooks/*.ipynb

``--check`` changes nothing and exits 1 listing the notebooks that still hold outputs.
Uses only the standard library (``json``), keeping the notebook's own formatting conventions
(1-space indent, trailing newline) that Jupyter writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Metadata keys Jupyter adds while running that carry nothing worth committing.
_VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def has_outputs(nb: dict[str, Any]) -> bool:
    """True when any code cell has outputs or an execution count."""
    return any(
        cell.get("outputs") or cell.get("execution_count") is not None
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code"
    )


def strip(nb: dict[str, Any]) -> dict[str, Any]:
    """Remove outputs, execution counts and volatile metadata, in place; return ``nb``."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        for key in _VOLATILE_CELL_METADATA:
            meta.pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if dirty")
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if not has_outputs(nb) and "widgets" not in nb.get("metadata", {}):
            continue
        dirty.append(path)
        if not args.check:
            text = json.dumps(strip(nb), indent=1, ensure_ascii=False) + "\n"
            path.write_text(text, encoding="utf-8")
    for path in dirty:
        print(("has outputs: " if args.check else "stripped: ") + str(path))
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
