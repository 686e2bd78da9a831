"""binder/ stays in step with pyproject.toml and with what the notebooks import.

The slow test builds what Binder would: a fresh virtualenv with ``binder/requirements.txt`` and
``binder/postBuild`` only (plus ipykernel, which Binder's base image provides), checks that
jupyter-server-proxy and pyarrow are there, and runs the quickstart notebook in it on the
shipped recording (``WSN_DEMO_SOURCE=replay``, as a Binder demo without live agents would).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# What repo2docker's base environment already has (Jupyter itself, the kernel and IPython).
BINDER_BASE = {"ipython", "ipykernel", "jupyterlab", "notebook"}
# import name -> distribution name, where they differ
IMPORT_TO_DIST = {"IPython": "ipython", "websockets": "websockets", "matplotlib": "matplotlib"}


def binder_requirements() -> dict[str, Requirement]:
    reqs = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs


def runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(d) for d in project["dependencies"]]


def notebook_imports(path: Path) -> set[str]:
    """Top-level module names imported by a notebook's code cells (magics stripped)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # a magic becomes ``pass`` at its indentation (it may be the body of an ``if``)
        source = "\n".join(
            line[: len(line) - len(line.lstrip())] + "pass"
            if line.lstrip().startswith(("%", "!"))
            else line
            for line in source.splitlines()
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_binder_requirements_cover_every_runtime_dependency() -> None:
    reqs = binder_requirements()
    for dep in runtime_dependencies():
        name = canonicalize_name(dep.name)
        assert name in reqs, f"binder/requirements.txt lacks {dep.name} (pyproject dependency)"
        assert reqs[name].specifier == dep.specifier, (
            f"{dep.name}: binder says {reqs[name].specifier!s}, pyproject says {dep.specifier!s}"
        )


def extra_requirements(name: str) -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(d) for d in project["optional-dependencies"][name]]
    return {canonicalize_name(r.name): r for r in reqs}


@pytest.mark.parametrize("extra", ["proxy", "parquet"])
def test_binder_has_the_proxy_and_parquet_extras(extra: str) -> None:
    """Binder needs jupyter-server-proxy (the kernel's server at <binder>/proxy/<port>/) and
    pyarrow (the shipped recording), with pyproject's bounds; CI installs the proxy too."""
    reqs = binder_requirements()
    for name, req in extra_requirements(extra).items():
        assert name in reqs, f"binder/requirements.txt lacks {req.name} (extra [{extra}])"
        assert reqs[name].specifier == req.specifier, f"{req.name}: binder and [{extra}] differ"
        assert name in extra_requirements("test"), f"{req.name} missing from the test extra"


def test_every_notebook_import_is_satisfied_by_binder() -> None:
    reqs = set(binder_requirements())
    stdlib = set(sys.stdlib_module_names)
    missing = {}
    for path in NOTEBOOKS:
        for module in notebook_imports(path):
            if module in stdlib or module == "wsnotebook":
                continue
            dist = canonicalize_name(IMPORT_TO_DIST.get(module, module))
            if dist not in reqs and dist not in BINDER_BASE:
                missing.setdefault(path.name, []).append(module)
    assert not missing, f"imports not provided by binder/: {missing}"


def test_notebook_imports_are_found_by_the_scanner() -> None:
    # guards the check above against silently scanning nothing
    found = set().union(*(notebook_imports(p) for p in NOTEBOOKS))
    assert {"wsnotebook", "pandas", "matplotlib"} <= found


def test_postbuild_installs_the_package_itself() -> None:
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    assert re.search(r"pip install .*\s\.\s*$", post.read_text(), re.M)


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_fresh_binder_environment_runs_the_quickstart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = tmp_path / "binder-venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    def pip(*args: str) -> None:
        proc = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    pip("-r", str(BINDER / "requirements.txt"), "ipykernel")  # ipykernel: Binder's base image
    proxy = subprocess.run(
        [str(py), "-c", "import jupyter_server_proxy, pyarrow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proxy.returncode == 0, proxy.stderr
    post = subprocess.run(
        ["bash", str(BINDER / "postBuild")],
        cwd=ROOT,
        env={**env, "PATH": f"{env_dir / 'bin'}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert post.returncode == 0, post.stderr[-3000:]
    # the package is installed, not imported from the checkout
    where = subprocess.run(
        [str(py), "-c", "import wsnotebook; print(wsnotebook.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0 and str(env_dir) in where.stdout, where.stderr

    # Execute the quickstart with this venv's python as the kernel.
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = tmp_path / "kernels"
    (spec_dir / "binder").mkdir(parents=True)
    (spec_dir / "binder" / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "binder venv",
                "language": "python",
            }
        )
    )
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "01_quickstart.ipynb", as_version=4)
    ksm = KernelSpecManager(kernel_dirs=[str(spec_dir)])
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="binder",
        kernel_manager_class="jupyter_client.manager.KernelManager",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.km = client.kernel_manager_class(kernel_name="binder", kernel_spec_manager=ksm)
    # Binder has no live agents: the quickstart replays the shipped recording when asked
    monkeypatch.setenv("WSN_DEMO_SOURCE", "replay")
    client.execute()  # raises CellExecutionError on the first failing cell
    text = "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    assert "QUICKSTART_SESSIONS" in text
