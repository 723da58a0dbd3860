"""The web demo's request guard: body size bounded by the bytes actually read, JSON content type, Host/Origin checks
against the bound address (cross-site requests and DNS rebinding refused)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from t2igan.apps.serve import ServeLimits, create_app

MB = 1024 * 1024


@pytest.fixture
def app(tiny_pipe: Any) -> Any:
    return create_app(tiny_pipe, host="127.0.0.1", port=7860)


@pytest.fixture
def client(app: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:7860")


# ----------------------------------------------------------------------------------------------- body size
def _asgi_post(
    app: Any, path: str, content_type: str, head: bytes, chunks: int, chunk: int = MB
) -> tuple[int, dict, int]:
    """POST ``head`` then a chunked flood (no Content-Length) straight through ASGI; (status, JSON answer, bytes
    the app read)."""
    read = 0
    sent: list[dict[str, Any]] = []
    remaining = chunks

    async def receive() -> dict[str, Any]:
        nonlocal read, remaining
        if remaining == 0:
            await asyncio.sleep(3600)  # nothing more: a well-behaved app never asks again
        body = head if remaining == chunks else b"\x00" * chunk
        remaining -= 1
        read += len(body)
        return {"type": "http.request", "body": body, "more_body": remaining > 0}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:7860"),
            (b"content-type", content_type.encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 7860),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), read


UPLOAD_HEAD = (
    b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
)


@pytest.mark.parametrize(
    ("path", "content_type", "head"),
    [
        ("/api/generate", "application/json", b'{"caption": "'),
        ("/api/style", "multipart/form-data; boundary=x", UPLOAD_HEAD),
    ],
)
def test_chunked_200mb_body_is_cut_off_at_the_limit(app: Any, path: str, content_type: str, head: bytes) -> None:
    status, answer, read = _asgi_post(app, path, content_type, head, chunks=200)
    assert status == 413 and "larger than 5 MB" in answer["error"]
    assert read <= 6 * MB + 64 * 1024  # the 5 MB limit (+ envelope) and one chunk, not 200 MB


def test_chunked_body_through_testclient(client: TestClient) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(7):
            yield b" " * MB

    r = client.post("/api/generate", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    # A declared Content-Length over the limit is refused before reading.
    r = client.post("/api/generate", content=b" " * (6 * MB), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/api/generate", json={"caption": "a red flower", "n": 1}).status_code == 200


def test_live_server_stops_reading_a_chunked_flood(tiny_pipe: Any, serve_live: Any) -> None:
    """Real uvicorn, raw socket, chunked body: the server answers 413 and the client cannot push 200 MB into it."""
    app = create_app(tiny_pipe, ServeLimits(max_upload_bytes=1 * MB))
    with serve_live(app) as url:
        port = int(url.rsplit(":", 1)[1])
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * (64 * 1024))
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" % port
            )
            s.settimeout(1.0)
            deadline = time.monotonic() + 20
            try:
                while sent < 200 * MB and time.monotonic() < deadline:
                    s.sendall(chunk)
                    sent += 64 * 1024
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            s.settimeout(5)
            answer = b""
            try:
                while b"\r\n\r\n" not in answer:
                    data = s.recv(65536)
                    if not data:
                        break
                    answer += data
            except (TimeoutError, ConnectionResetError):
                pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 50 * MB, f"the server kept reading: {sent / MB:.0f} MB sent"


# ----------------------------------------------------------------------------------------------- content type
@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"content-type": "text/plain"}, b'{"caption": "a red flower"}'),
        ({"content-type": "application/x-www-form-urlencoded"}, b"caption=a+red+flower"),
        ({"content-type": "multipart/form-data; boundary=x"}, b"--x--"),
        ({}, b'{"caption": "a red flower"}'),
    ],
)
def test_json_api_requires_application_json(client: TestClient, headers: dict, content: bytes) -> None:
    r = client.post("/api/generate", content=content, headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["error"]


def test_json_with_charset_is_fine(client: TestClient) -> None:
    r = client.post(
        "/api/generate",
        content=b'{"caption": "a red flower", "n": 1}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_style_upload_requires_form_data(client: TestClient) -> None:
    r = client.post("/api/style", json={"caption": "a", "image": "x"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]


# ----------------------------------------------------------------------------------------------- Host / Origin
@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "LOCALHOST:7860"])
def test_loopback_names_are_served(app: Any, host: str) -> None:
    c = TestClient(app, base_url="http://127.0.0.1:7860")
    r = c.post("/api/generate", json={"caption": "a red flower", "n": 1}, headers={"host": host})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:7860",  # DNS rebinding: the attacker's name resolving to 127.0.0.1
        "evil.example",
        "127.0.0.1:8000",  # another port
        "127.0.0.1.evil.example:7860",
        "localhost:7860@evil.example",
        "10.0.0.7:7860",  # an IP the server is not bound to
    ],
)
def test_foreign_host_is_refused_everywhere(client: TestClient, host: str) -> None:
    r = client.post("/api/generate", json={"caption": "a", "n": 1}, headers={"host": host})
    assert r.status_code == 403 and "Host" in r.json()["error"]
    for path in ("/", "/api/info", "/static/app.js"):
        assert client.get(path, headers={"host": host}).status_code == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:7860", "http://127.0.0.1:9", "null"])
def test_cross_site_origin_is_refused(client: TestClient, origin: str) -> None:
    r = client.post("/api/generate", json={"caption": "a red flower", "n": 1}, headers={"origin": origin})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    form = client.post("/api/style", data={"caption": "a"}, headers={"origin": origin})
    assert form.status_code == 403


def test_same_origin_page_requests_pass(client: TestClient) -> None:
    for origin in ("http://127.0.0.1:7860", "http://localhost:7860"):
        r = client.post("/api/generate", json={"caption": "a red flower", "n": 1}, headers={"origin": origin})
        assert r.status_code == 200, r.text


def test_bound_address_and_allowed_names(tiny_pipe: Any) -> None:
    lan = TestClient(create_app(tiny_pipe, host="192.168.1.5", port=8080, allow_hosts=("flowers.lan",)))
    for host, status in [
        ("192.168.1.5:8080", 200),
        ("flowers.lan:8080", 200),
        ("localhost:8080", 200),
        ("192.168.1.6:8080", 403),
        ("other.lan:8080", 403),
    ]:
        assert lan.get("/api/info", headers={"host": host}).status_code == status, host
    everywhere = TestClient(create_app(tiny_pipe, host="0.0.0.0", port=8080))
    assert everywhere.get("/api/info", headers={"host": "10.1.2.3:8080"}).status_code == 200  # an IP: not rebinding
    assert everywhere.get("/api/info", headers={"host": "[fe80::1]:8080"}).status_code == 200
    assert everywhere.get("/api/info", headers={"host": "rebind.example:8080"}).status_code == 403
    assert everywhere.get("/api/info", headers={"host": f"{socket.gethostname()}:8080"}).status_code == 200


def test_cli_serve_binds_the_guard_to_its_host_and_port(tiny_pretrained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`t2igan serve --port P` builds an app that accepts http://127.0.0.1:P and refuses other hosts and ports."""
    import t2igan.apps.serve as serve_mod
    from t2igan.apps.cli import main

    captured: dict[str, Any] = {}
    monkeypatch.setattr(serve_mod, "run_server", lambda app, host, port: captured.update(app=app, port=port))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    main(["serve", str(tiny_pretrained), "--port", str(port), "--allow-host", "demo.lan"])
    c = TestClient(captured["app"], base_url=f"http://127.0.0.1:{port}")
    assert c.post("/api/generate", json={"caption": "a red flower", "n": 1}).status_code == 200
    assert c.get("/api/info", headers={"host": f"demo.lan:{port}"}).status_code == 200
    assert c.get("/api/info", headers={"host": f"127.0.0.1:{port + 1}"}).status_code == 403
    assert c.get("/api/info", headers={"host": f"evil.example:{port}"}).status_code == 403
