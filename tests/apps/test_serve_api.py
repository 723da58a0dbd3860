"""The web demo's HTTP API: generation, interpolation, style upload, input limits, errors, concurrency."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from t2igan.apps.cli import main
from t2igan.apps.serve import ServeLimits, create_app
from t2igan.sampling import T2IPipeline

LOCAL = "http://127.0.0.1"  # the Host the server accepts (TestClient's default "testserver" is refused)


def _decode(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


@pytest.fixture
def client(tiny_pipe: T2IPipeline) -> TestClient:
    return TestClient(create_app(tiny_pipe, ServeLimits(max_images=16, max_upload_bytes=200_000)), base_url=LOCAL)


def _png(size: tuple[int, int] = (40, 30), fmt: str = "PNG", color: tuple[int, int, int] = (200, 20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def test_index_and_static_assets_are_local(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200
    # No CDN: the page works offline.
    assert "http://" not in page.text and "https://" not in page.text


def test_info_reports_abilities_and_limits(client: TestClient, tiny_pipe_no_style: T2IPipeline) -> None:
    info = client.get("/api/info").json()
    assert info["interpolation"] is True and info["style_transfer"] is True
    assert info["limits"]["max_images"] == 16
    no_style = TestClient(create_app(tiny_pipe_no_style), base_url=LOCAL).get("/api/info").json()
    assert no_style["style_transfer"] is False


def test_generate_returns_n_images_and_is_seeded(client: TestClient) -> None:
    r = client.post("/api/generate", json={"caption": "a red flower", "n": 3, "seed": 5})
    assert r.status_code == 200, r.text
    images = [_decode(u) for u in r.json()["images"]]
    assert len(images) == 3 and images[0].size == (32, 32)
    again = client.post("/api/generate", json={"caption": "a red flower", "n": 1, "seed": 6}).json()["images"]
    assert again[0] == r.json()["images"][1]  # caption + seed → the same image, whatever n is


def test_interpolation_endpoints_are_the_captions(client: TestClient) -> None:
    base = {"caption": "a red flower", "caption2": "a blue flower", "n": 1, "seed": 0}
    a = client.post("/api/generate", json={**base, "mix": 0.0}).json()["images"][0]
    b = client.post("/api/generate", json={**base, "mix": 1.0}).json()["images"][0]
    plain = client.post("/api/generate", json={"caption": "a red flower", "n": 1, "seed": 0}).json()["images"][0]
    solo_b = client.post("/api/generate", json={"caption": "a blue flower", "n": 1, "seed": 0}).json()["images"][0]
    assert a == plain and b == solo_b


def test_interpolation_mixes_the_two_embeddings(tiny_pretrained: Path) -> None:
    """GAN-INT at the demo (Reed et al. 2016 §4.3): G sees (1 − mix)·φ(caption) + mix·φ(caption2)."""
    seen: list[torch.Tensor] = []

    class Recording(T2IPipeline):
        def __call__(self, captions=None, *args, **kw):  # type: ignore[no-untyped-def]
            seen.append(kw["prompt_embeds"] if kw.get("prompt_embeds") is not None else self.encode_prompt(captions))
            return super().__call__(captions, *args, **kw)

    pipe = Recording.from_pretrained(tiny_pretrained)
    c = TestClient(create_app(pipe), base_url=LOCAL)
    base = {"caption": "a red flower", "caption2": "a white lily with a long green stem", "n": 2, "seed": 3}
    for mix in (0.25, 1.0):
        assert c.post("/api/generate", json={**base, "mix": mix}).status_code == 200
    emb = pipe.encode_prompt([base["caption"], base["caption2"]])
    assert (emb[0] - emb[1]).abs().max() > 1e-3  # far enough apart for the checks below to tell them apart
    torch.testing.assert_close(seen[0][0], 0.75 * emb[0] + 0.25 * emb[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(seen[1][0], emb[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"caption": ""}, 400, "type a caption"),
        ({"caption": "   "}, 400, "type a caption"),
        ({"caption": "x" * 301}, 400, "too long"),
        ({"caption": 5}, 400, "must be text"),
        ({"caption": "ok", "n": 0}, 400, "n: 0 is out of range"),
        ({"caption": "ok", "n": 17}, 400, "n: 17 is out of range"),
        ({"caption": "ok", "n": 2.5}, 400, "whole number"),
        ({"caption": "ok", "n": True}, 400, "whole number"),
        ({"caption": "ok", "seed": -1}, 400, "seed: -1 is out of range"),
        ({"caption": "ok", "seed": 2**40}, 400, "seed"),
        ({"caption": "ok", "seed": "abc"}, 400, "whole number"),
        ({"caption": "ok", "caption2": "b", "mix": 2}, 400, "mix"),
        ({"caption": "ok", "caption2": "b", "mix": "nan"}, 400, "mix"),
        ({"caption": "ok", "steps": 1000}, 400, "unknown field"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_requests_get_clear_json_errors(client: TestClient, body: object, status: int, fragment: str) -> None:
    r = client.post("/api/generate", json=body)
    assert r.status_code == status
    assert fragment in r.json()["error"]
    # ... and the server keeps serving.
    assert client.post("/api/generate", json={"caption": "still fine", "n": 1}).status_code == 200


def test_malformed_json_and_control_characters(client: TestClient) -> None:
    r = client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    ok = client.post("/api/generate", json={"caption": "red\x00 \x1b[31m flower\n\n", "n": 1})
    assert ok.status_code == 200


def test_style_upload_ok_and_bad_files(client: TestClient) -> None:
    ok = client.post("/api/style", data={"caption": "a flower"}, files={"image": ("a.png", _png(), "image/png")})
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["images"]) == 1
    jpeg = client.post(
        "/api/style", data={"caption": "a flower"}, files={"image": ("a.jpg", _png(fmt="JPEG"), "image/jpeg")}
    )
    assert jpeg.status_code == 200
    cases = [
        (("a.png", b"", "image/png"), 400, "empty"),
        (("a.txt", b"hello", "text/plain"), 415, "not an image"),
        (("a.png", b"\x89PNG\r\n\x1a\n garbage", "image/png"), 415, "not a readable image"),
        (("a.png", _png()[:60], "image/png"), 415, ""),  # truncated
        (("a.gif", _gif(), "image/gif"), 415, "GIF is not accepted"),
        (("big.png", b"\x00" * 250_000, "image/png"), 413, "larger than"),
    ]
    for file, status, fragment in cases:
        r = client.post("/api/style", data={"caption": "a flower"}, files={"image": file})
        assert r.status_code == status, (file[0], r.text)
        assert fragment in r.json()["error"]
    missing = client.post("/api/style", data={"caption": "a flower"})
    assert missing.status_code == 400 and "choose an image" in missing.json()["error"]
    no_caption = client.post("/api/style", files={"image": ("a.png", _png(), "image/png")})
    assert no_caption.status_code == 400 and "caption" in no_caption.json()["error"]


def test_decompression_bomb_refused_before_decoding(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buf, format="PNG")  # tiny file, 36 M pixels
    assert len(buf.getvalue()) < 200_000
    r = client.post("/api/style", data={"caption": "x"}, files={"image": ("bomb.png", buf.getvalue(), "image/png")})
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_style_refused_without_style_encoder(tiny_pipe_no_style: T2IPipeline) -> None:
    c = TestClient(create_app(tiny_pipe_no_style), base_url=LOCAL)
    r = c.post("/api/style", data={"caption": "a"}, files={"image": ("a.png", _png(), "image/png")})
    assert r.status_code == 501 and "no style encoder" in r.json()["error"]


def test_model_crash_is_a_500_message_and_server_survives(tiny_pretrained: Path) -> None:
    class Flaky(T2IPipeline):
        def __call__(self, captions=None, *args, **kw):  # type: ignore[no-untyped-def]
            if captions and captions[0] == "boom":
                raise RuntimeError("CUDA out of memory (simulated)")
            return super().__call__(captions, *args, **kw)

    c = TestClient(create_app(Flaky.from_pretrained(tiny_pretrained)), base_url=LOCAL)
    r = c.post("/api/generate", json={"caption": "boom"})
    assert r.status_code == 500 and "generation failed" in r.json()["error"]
    assert "CUDA" not in r.json()["error"]  # internals stay in the log
    assert c.post("/api/generate", json={"caption": "fine", "n": 1}).status_code == 200


def test_concurrent_requests_on_a_live_server(tiny_pretrained: Path, serve_live: Any) -> None:
    """Eight clients at once against real uvicorn: all succeed, the model never runs twice at the same time."""
    active = 0
    peak = 0
    guard = threading.Lock()

    calls = 0

    class Counting(T2IPipeline):
        def __call__(self, captions=None, *args, **kw):  # type: ignore[no-untyped-def]
            nonlocal active, peak, calls
            with guard:
                active += 1
                calls += 1
                peak = max(peak, active)
            try:
                time.sleep(0.05)  # long enough for requests to overlap if nothing serialised them
                return super().__call__(captions, *args, **kw)
            finally:
                with guard:
                    active -= 1

    app = create_app(Counting.from_pretrained(tiny_pretrained), ServeLimits(max_pending=16))
    with serve_live(app) as url:
        # The event loop stays free while the model works: /api/info answers during generation.
        def post(i: int) -> tuple[int, int]:
            req = urllib.request.Request(
                f"{url}/api/generate",
                data=json.dumps({"caption": f"flower {i}", "n": 2, "seed": i}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, len(json.loads(r.read())["images"])

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(post, range(8)))
            with urllib.request.urlopen(f"{url}/api/info", timeout=5) as r:
                assert r.status == 200
    assert results == [(200, 2)] * 8
    assert calls == 8 and peak == 1


def test_busy_server_says_so(tiny_pretrained: Path, serve_live: Any) -> None:
    """Beyond `max_pending` waiting requests the server answers 503 at once instead of queueing without bound."""
    entered, gate = threading.Event(), threading.Event()

    class Slow(T2IPipeline):
        def __call__(self, captions=None, *args, **kw):  # type: ignore[no-untyped-def]
            entered.set()
            gate.wait(20)
            return super().__call__(captions, *args, **kw)

    def post(url: str) -> int:
        req = urllib.request.Request(
            f"{url}/api/generate",
            data=json.dumps({"caption": "a", "n": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    app = create_app(Slow.from_pretrained(tiny_pretrained), ServeLimits(max_pending=1))
    with serve_live(app) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, url)
        assert entered.wait(20)
        try:
            assert post(url) == 503
        finally:
            gate.set()
        assert first.result() == 200
        assert post(url) == 200


def test_cli_serve_rejects_missing_or_wrong_folder(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as e:
        main(["serve", str(tmp_path / "nope")])
    assert e.value.code == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["serve", str(tmp_path)])
    assert e.value.code == 2
    assert "no model_index.json" in capsys.readouterr().err


def test_cli_serve_busy_port_and_bad_device(tmp_path, capsys, tiny_pretrained) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(SystemExit) as e:
            main(["serve", str(tiny_pretrained), "--port", str(port)])
    assert e.value.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["serve", str(tiny_pretrained), "--device", "gpu0"])
    assert e.value.code == 2
    assert "--device 'gpu0' is not a device" in capsys.readouterr().err


def test_cli_serve_help_has_example(capsys) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(SystemExit):
        main(["serve", "--help"])
    assert "t2igan serve runs/demo/pretrained" in capsys.readouterr().out


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="GIF")
    return buf.getvalue()
