"""Which HTTP requests reach the web demo at all: a small ASGI middleware in front of the app.

Three checks, each answered with JSON ``{"error": "…"}`` before the app sees the request:

- **Host and Origin** (403). A local server is reachable from every web page the user opens: a page on
  ``evil.example`` can POST to ``http://127.0.0.1:7860`` (cross-site request), or make its own name resolve to
  127.0.0.1 and read the answers (DNS rebinding). The browser always says who is asking: ``Host`` carries the name
  the page used, ``Origin`` (sent with every cross-origin request and every POST) the page's own origin. Both must
  name this server: a loopback name (``localhost``, ``127.0.0.1``, ``::1``), the ``--host`` it was started with or
  an ``--allow-host`` name, and the port it listens on. Bound to all interfaces (``0.0.0.0``/``::``), any IP literal
  and this machine's host name are accepted too (a rebinding attack needs a DNS name, never an IP).
- **Content type** (415) of POST bodies, per path: ``application/json`` for the JSON API (a cross-site HTML form
  can only send ``text/plain``, urlencoded or multipart bodies), form data for uploads.
- **Body size** (413): at most ``max_body`` bytes are read, whether the client announced a ``Content-Length`` or
  streams a chunked body; the request is cut off as soon as the count passes the limit.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a request body passes the limit; the guard turns it into a 413 answer."""


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The names and port under which this server may be addressed (see module docstring)."""

    host: str = "127.0.0.1"  # the address it was bound to (--host)
    port: int | None = None  # the port it listens on; None accepts any (an app embedded elsewhere)
    extra: tuple[str, ...] = ()  # --allow-host names
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = set(LOOPBACK_NAMES) | {_bare(self.host)} | {_bare(n) for n in self.extra}
        if self.wildcard:
            names.add(socket.gethostname().lower())
        object.__setattr__(self, "names", frozenset(n for n in names if n))

    @property
    def wildcard(self) -> bool:
        return _bare(self.host) in WILDCARD_HOSTS

    def allows(self, name: str | None, port: int | None) -> bool:
        """``name:port`` (port None = the scheme's default, already resolved by the caller) names this server."""
        if not name:
            return False
        name = _bare(name)
        if name not in self.names and not (self.wildcard and _is_ip(name)):
            return False
        return self.port is None or port == self.port

    def check(self, host_header: str | None, origin: str | None) -> str | None:
        """None when the request may go on, else what is wrong (for the 403 answer)."""
        if host_header is None:
            return "the request has no Host header"
        try:
            parts = urlsplit(f"//{host_header}")
            name, port = parts.hostname, parts.port if parts.port is not None else 80
        except ValueError:
            return f"bad Host header {host_header!r}"
        if not self.allows(name, port):
            return (
                f"Host {host_header!r} does not name this server; open it as http://127.0.0.1:{self.port or 'PORT'}/ "
                "(or start it with --allow-host NAME)"
            )
        if origin is None:
            return None
        try:
            o = urlsplit(origin)
            o_port = o.port if o.port is not None else {"http": 80, "https": 443}.get(o.scheme)
        except ValueError:
            return f"bad Origin header {origin!r}"
        if o.scheme not in ("http", "https") or not self.allows(o.hostname, o_port):
            return f"cross-site request from {origin!r} refused"
        return None


def _bare(name: str) -> str:
    return name.strip().strip("[]").lower()


async def send_json(send: Any, status: int, payload: Mapping[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware applying `HostPolicy`, per-path POST content types and the body limit (module docstring)."""

    def __init__(
        self,
        app: Any,
        *,
        policy: HostPolicy,
        max_body: int,
        content_types: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.app = app
        self.policy = policy
        self.max_body = max_body
        self.content_types = dict(content_types)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refused = self.policy.check(headers.get("host"), headers.get("origin"))
        if refused:
            await send_json(send, 403, {"error": refused})
            return
        wanted = self.content_types.get(scope.get("path", ""))
        if scope.get("method") == "POST" and wanted:
            got = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if got not in wanted:
                want = " or ".join(wanted)
                await send_json(send, 415, {"error": f"send the request as {want} (got {got or 'no content type'})"})
                return
        too_large = f"request larger than {self.max_body // (1024 * 1024)} MB"
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.max_body):
            await send_json(send, 413, {"error": too_large})
            return
        read = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_body:
                    raise BodyTooLarge(too_large)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await send_json(send, 413, {"error": too_large})


__all__ = ["BodyTooLarge", "HostPolicy", "RequestGuard"]
