"""Finding the kernel's Jupyter server (runtime files, hub environment) and the proxy URLs;
the Host guard and Origin rule for requests Jupyter forwarded (pure, no I/O but tmp files)."""

from __future__ import annotations

import json
from pathlib import Path

from wsnotebook.server import JupyterServer, find_jupyter_server, public_urls
from wsnotebook.server.hostcheck import HostPolicy

TOKEN = "t0ken"


def write_server(runtime: Path, pid: int, port: int, **extra: object) -> None:
    runtime.mkdir(parents=True, exist_ok=True)
    info = {
        "base_url": "/",
        "hostname": "localhost",
        "pid": pid,
        "port": port,
        "secure": False,
        "token": TOKEN,
        "url": f"http://localhost:{port}/",
        **extra,
    }
    (runtime / f"jpserver-{pid}.json").write_text(json.dumps(info))


def test_the_parent_processes_server_is_chosen(tmp_path: Path) -> None:
    write_server(tmp_path, 100, 8888)
    write_server(tmp_path, 200, 9999, base_url="/lab-here/")
    found = find_jupyter_server({}, runtime_dir=tmp_path, parent_pid=200)
    assert found is not None
    assert found.origin == "http://localhost:9999" and found.base_url == "/lab-here/"
    assert found.token == TOKEN and found.source == "jpserver-200.json (parent)"
    assert "t0ken" not in repr(found)


def test_one_running_server_is_taken_by_a_kernel_several_are_not(tmp_path: Path) -> None:
    write_server(tmp_path, 100, 8888)
    found = find_jupyter_server({}, runtime_dir=tmp_path, parent_pid=1, in_kernel=True)
    assert found is not None and "only running server" in found.source
    # a plain script is not taken for a kernel of whatever Jupyter happens to run
    assert find_jupyter_server({}, runtime_dir=tmp_path, parent_pid=1, in_kernel=False) is None
    write_server(tmp_path, 101, 8889)
    assert find_jupyter_server({}, runtime_dir=tmp_path, parent_pid=1, in_kernel=True) is None
    missing = tmp_path / "missing"
    assert find_jupyter_server({}, runtime_dir=missing, parent_pid=1, in_kernel=True) is None


def test_a_hub_environment_and_a_public_url(tmp_path: Path) -> None:
    env = {
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "WSNOTEBOOK_PUBLIC_URL": "https://hub.example.org/ignored/path",
    }
    found = find_jupyter_server(env, runtime_dir=tmp_path, parent_pid=1)
    assert found is not None
    assert found.origin == "https://hub.example.org" and found.base_url == "/user/alice/"
    assert found.token == "hub-token" and "hub.example.org" in found.hosts
    urls = public_urls(4000, found)
    assert urls is not None
    assert urls.events == "https://hub.example.org/user/alice/proxy/4000/events"
    assert urls.stream == "wss://hub.example.org/user/alice/proxy/4000/stream"
    assert urls.with_token(urls.stream).endswith("/stream?token=hub-token")
    assert "hub-token" not in repr(urls) and "hub-token" not in json.dumps(urls.as_dict())
    hook = urls.hook_command(source_app="proj", event_type="Stop")
    assert hook == (
        "uv run .claude/hooks/send_event.py --source-app proj --event-type Stop --server-url "
        '"https://hub.example.org/user/alice/proxy/4000/events?token=$JUPYTER_TOKEN"'
    )
    assert "hub-token" not in hook + urls.curl_command() and urls.events in urls.curl_command()


def test_without_a_public_origin_the_urls_are_paths() -> None:
    found = find_jupyter_server(
        {"JUPYTERHUB_SERVICE_PREFIX": "/user/bob"}, runtime_dir=Path("/nonexistent"), parent_pid=1
    )
    assert found is not None and found.origin == "" and found.base_url == "/user/bob/"
    urls = public_urls(4001, found)
    assert urls is not None and urls.events == "/user/bob/proxy/4001/events"
    assert urls.with_token(urls.events) == urls.events  # no token known


def test_outside_jupyter_there_are_no_public_urls(tmp_path: Path) -> None:
    assert find_jupyter_server({}, runtime_dir=tmp_path, parent_pid=1) is None


JUPYTER = JupyterServer(
    origin="https://hub.example.org",
    base_url="/user/alice/",
    token=TOKEN,
    hosts=frozenset({"hub.example.org"}),
    source="test",
)


def policy(found: JupyterServer | None = JUPYTER) -> HostPolicy:
    return HostPolicy(bind_host="127.0.0.1", allowed_hosts=None, jupyter=lambda: found)


def test_the_host_guard_accepts_jupyters_names_and_its_token_nothing_else() -> None:
    p = policy()
    assert p.allows("127.0.0.1:4000", {}, {})
    assert p.allows("hub.example.org", {}, {})  # Jupyter's own public name
    assert not p.allows("hub.example.org")  # without the request's headers: as before
    assert not p.allows("evil.example:4000", {}, {})  # a rebinding page
    assert not p.allows("evil.example:4000", {"Authorization": "token wrong"}, {})
    assert p.allows("other.name", {"Authorization": f"token {TOKEN}"}, {})  # forwarded by Jupyter
    assert p.allows("other.name", {}, {"token": TOKEN})
    assert not p.allows("other.name", {"Authorization": f"Bearer {TOKEN}"}, {})
    assert not policy(None).allows("hub.example.org", {"Authorization": f"token {TOKEN}"}, {})


def test_origins_of_jupyter_pass_others_do_not() -> None:
    p = policy()
    assert p.jupyter_origin_ok("https://hub.example.org", "hub.example.org", {}, {})
    assert not p.jupyter_origin_ok("https://evil.example", "evil.example", {}, {})
    # the request's own host, with Jupyter's token: a page served by Jupyter under that name
    assert p.jupyter_origin_ok("https://alias.example", "alias.example", {}, {"token": TOKEN})
    assert not p.jupyter_origin_ok("https://evil.example", "alias.example", {}, {"token": TOKEN})
    assert not policy(None).jupyter_origin_ok("https://hub.example.org", None, {}, {})


def test_behind_a_hub_the_servers_internal_origin_is_not_offered(tmp_path: Path) -> None:
    write_server(
        tmp_path,
        300,
        8888,
        url="http://10.0.0.7:8888/user/carol/",
        hostname="0.0.0.0",
        base_url="/user/carol/",
    )
    env = {"JUPYTERHUB_SERVICE_PREFIX": "/user/carol/"}
    found = find_jupyter_server(env, runtime_dir=tmp_path, parent_pid=300)
    assert found is not None and found.origin == "" and found.base_url == "/user/carol/"
    urls = public_urls(4000, found)
    assert urls is not None and urls.events == "/user/carol/proxy/4000/events"
    public = {**env, "WSNOTEBOOK_PUBLIC_URL": "https://hub.example.org"}
    found = find_jupyter_server(public, runtime_dir=tmp_path, parent_pid=300)
    assert found is not None and found.origin == "https://hub.example.org"
    assert found.token == TOKEN  # the server's own token still counts
