"""``wsnotebook send``: POST one event to a server's ``/events`` and print the stored event.

The event is JSON on stdin, or built from ``--source-app/--session-id/--type`` (all three
needed).  Everything checkable before the request is checked first (JSON, NaN/Infinity, the
URL's host and port) and is a usage error (exit 2), never a traceback.  Exit 1 with the server's
``error`` on a 4xx/5xx reply; exit 3 when the server cannot be reached or does not speak HTTP.
The request is bounded by ``--timeout``; the token comes from ``--token`` or
``$WSNOTEBOOK_TOKEN``.  A server behind Jupyter's proxy (``http://host/proxy/4000``, a path
prefix is kept) takes Jupyter's token: ``--jupyter-token T`` (``Authorization: token T``) or
``?token=T`` in ``--url``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TextIO

from ..errors import ConfigError
from .common import EXIT_CONNECTION, EXIT_HTTP_ERROR, EXIT_OK, EXIT_USAGE

__all__ = ["build_event", "cmd_send"]


def build_event(args: argparse.Namespace, stdin: TextIO) -> Any:
    """The JSON value to post: stdin when no --type/--source-app/--session-id flags are given."""
    if args.type is None and args.source_app is None and args.session_id is None:
        text = stdin.read()
        if not text.strip():
            raise ConfigError(
                "no event: pipe JSON on stdin or give --source-app/--session-id/--type"
            )
        return json.loads(text)
    missing = [
        flag
        for flag, value in (
            ("--source-app", args.source_app),
            ("--session-id", args.session_id),
            ("--type", args.type),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}")
    payload = _payload_option(args.payload)
    event: dict[str, Any] = {
        "source_app": args.source_app,
        "session_id": args.session_id,
        "hook_event_type": args.type,
        "payload": payload,
    }
    if args.summary:
        event["summary"] = args.summary
    if args.model_name:
        event["model_name"] = args.model_name
    return event


def _payload_option(text: str | None) -> dict[str, Any]:
    """``--payload``'s JSON object ({} when not given); a ConfigError naming the option."""
    if not text:
        return {}
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"--payload must be a JSON object, got {type(payload).__name__}")
    return payload


def cmd_send(args: argparse.Namespace, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    from ..recording import events_url

    try:
        event = build_event(args, stdin)
        url, _ = events_url(args.url)  # keeps a path prefix (Jupyter's /proxy/PORT) and ?token=
        body = json.dumps(event, allow_nan=False, ensure_ascii=False).encode()
        req = urllib.request.Request(url, data=body, method="POST")
        req.host.encode("idna")  # a bad host: a usage error here, not a traceback later
        port = urllib.parse.urlsplit(url).port  # raises ValueError on a bad port
        del port
    except (ValueError, json.JSONDecodeError, UnicodeError) as exc:
        # allow_nan=False: NaN/Infinity from stdin would be posted as invalid JSON.
        print(f"wsnotebook send: {exc}", file=sys.stderr)
        return EXIT_USAGE
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "wsnotebook-send/1.0",
        "Connection": "close",
    }
    token = args.token or os.environ.get("WSNOTEBOOK_TOKEN")
    # never taken from $JUPYTER_TOKEN: it would go to whatever server --url names
    jupyter_token = getattr(args, "jupyter_token", None)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif jupyter_token:
        headers["Authorization"] = f"token {jupyter_token}"
    for name, value in headers.items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            reply = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        print(f"wsnotebook send: HTTP {exc.code}: {detail}", file=sys.stderr)
        return EXIT_HTTP_ERROR
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # HTTPException: the peer answered, but not with HTTP (a bad status line, a cut body).
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        print(f"wsnotebook send: cannot reach {url}: {reason}", file=sys.stderr)
        return EXIT_CONNECTION
    try:
        print(json.dumps(json.loads(reply), indent=None if args.compact else 2), file=out)
    except ValueError:
        print(reply, file=out)
    return EXIT_OK
