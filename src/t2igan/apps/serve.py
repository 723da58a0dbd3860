"""`t2igan serve DIR` — a small web demo: type a caption, get a grid of images.

A FastAPI app with one static page (HTML/JS/CSS shipped in ``apps/static``; no CDN, works offline) over a
`T2IPipeline`. The page offers a caption, the number of images, a seed, text interpolation (GAN-INT: a second
caption and a slider mixing the two embeddings, Reed et al. 2016 §4.3) and, when the pretrained folder has a style
encoder, style transfer from an uploaded image (Reed et al. 2016 §4.4: z = S(x), then G(z, φ(t))).

Every request is checked against `ServeLimits`; a bad one gets HTTP 4xx with ``{"error": "…"}`` that the page shows,
and the server keeps serving. Sampling runs in a worker thread (never on the event loop) behind one lock, so
concurrent requests queue up instead of fighting over the model; more than ``max_pending`` waiting requests get 503.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from PIL import Image

from t2igan.apps.serve_examples import example_captions
from t2igan.apps.serve_guard import BodyTooLarge, HostPolicy, RequestGuard
from t2igan.sampling import T2IPipeline
from t2igan.utils.device import DEVICE_HELP, resolve_device
from t2igan.utils.errors import T2IError
from t2igan.utils.optional import require

try:  # the `web` extra; FastAPI resolves endpoint annotations from module globals, so import here
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
except ImportError:  # pragma: no cover - reported by create_app
    FastAPI = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for. Defaults suit a CPU; raise them for a GPU server."""

    max_caption_chars: int = 300  # CUB/Oxford captions are < 200 characters
    max_images: int = 64
    max_seed: int = 2**31 - 1  # seeds are seed … seed + n - 1, all ≤ max_seed
    max_upload_bytes: int = 5 * 1024 * 1024
    max_upload_pixels: int = 4096 * 4096  # decompression bombs stop here, before decoding
    upload_formats: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
    max_pending: int = 8  # requests waiting for the model beyond this get 503 "busy"


@dataclass
class GenerateRequest:
    """One generation request after validation (see `parse_generate`)."""

    caption: str
    n: int = 4
    seed: int = 0
    caption2: str | None = None  # interpolation target; None → plain generation
    mix: float = 0.0  # 0 → caption, 1 → caption2


class BadRequest(Exception):
    """A request the user can fix; its message is shown on the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------------------------- validation


def _clean_caption(value: Any, name: str, limits: ServeLimits, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadRequest(f"{name}: type a caption, e.g. 'this flower has pink petals and a yellow center'")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name}: must be text")
    # Control characters (other than whitespace) never help a text encoder; collapse whitespace.
    text = " ".join("".join(ch for ch in value if ch.isprintable() or ch.isspace()).split())
    if len(text) > limits.max_caption_chars:
        raise BadRequest(f"{name}: {len(text)} characters is too long (at most {limits.max_caption_chars})")
    if not text:
        raise BadRequest(f"{name}: no printable characters")
    return text


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"{name}: must be a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadRequest(f"{name}: must be a whole number, got {value!r}") from None
    if not isinstance(value, int):
        raise BadRequest(f"{name}: must be a whole number")
    if not lo <= value <= hi:
        raise BadRequest(f"{name}: {value} is out of range ({lo} … {hi})")
    return value


def _float(value: Any, name: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name}: must be a number") from None
    if not np.isfinite(x) or not lo <= x <= hi:
        raise BadRequest(f"{name}: {value} is out of range ({lo} … {hi})")
    return x


def parse_generate(body: Any, limits: ServeLimits) -> GenerateRequest:
    """Validate a generation request (JSON object or form fields) into a `GenerateRequest`."""
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object like {"caption": "…", "n": 4, "seed": 0}')
    known = {"caption", "n", "seed", "caption2", "mix"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)} (expected {', '.join(sorted(known))})")
    caption = _clean_caption(body.get("caption"), "caption", limits, required=True)
    assert caption is not None
    n = _int(body.get("n", 4), "n", 1, limits.max_images)
    seed = _int(body.get("seed", 0), "seed", 0, limits.max_seed - n + 1)
    caption2 = _clean_caption(body.get("caption2"), "caption2", limits, required=False)
    mix = _float(body.get("mix", 0.0), "mix", 0.0, 1.0)
    return GenerateRequest(caption=caption, n=n, seed=seed, caption2=caption2, mix=mix if caption2 else 0.0)


def decode_upload(data: bytes, content_type: str | None, limits: ServeLimits) -> Image.Image:
    """Bytes of an uploaded image → RGB PIL image, or `BadRequest` saying what is wrong."""
    if not data:
        raise BadRequest("image: the upload is empty")
    if len(data) > limits.max_upload_bytes:
        raise BadRequest(f"image: larger than {limits.max_upload_bytes // (1024 * 1024)} MB", status=413)
    if content_type and not content_type.startswith("image/") and content_type != "application/octet-stream":
        raise BadRequest(f"image: {content_type} is not an image (use {', '.join(limits.upload_formats)})", 415)
    try:
        im = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:
        raise BadRequest("image: too many pixels", status=413) from None
    except Exception:
        raise BadRequest(f"image: not a readable image (use {', '.join(limits.upload_formats)})", 415) from None
    if im.format not in limits.upload_formats:
        raise BadRequest(f"image: {im.format} is not accepted (use {', '.join(limits.upload_formats)})", 415)
    if im.width * im.height > limits.max_upload_pixels:
        raise BadRequest(f"image: {im.width}×{im.height} pixels is too large", status=413)
    try:
        im.load()
    except Exception as e:
        raise BadRequest(f"image: the file is truncated or corrupt ({type(e).__name__})", 415) from None
    return im.convert("RGB")


# ----------------------------------------------------------------------------------------------- the model


def model_info(pipe: T2IPipeline) -> dict[str, Any]:
    """What the page needs to know about the model: its abilities, image size, class and example captions."""
    return {
        "interpolation": pipe.text_encoder is not None,  # GAN-INT mixes two captions' embeddings
        "style_transfer": pipe.style_encoder is not None,
        "image_size": pipe.image_size,
        "model": type(pipe.generator).__name__,
        "examples": example_captions(pipe.path),  # its training captions (or generic ones)
    }


def generate_images(pipe: T2IPipeline, req: GenerateRequest) -> list[Image.Image]:
    """``req.n`` images for the caption (or for the mix of two captions' embeddings, Reed et al. 2016 §4.3)."""
    seeds = list(range(req.seed, req.seed + req.n))  # image k is the same whatever n is
    with torch.inference_mode():
        if req.caption2 is not None and req.mix > 0:
            emb = pipe.encode_prompt([req.caption, req.caption2])
            mixed = torch.lerp(emb[0:1], emb[1:2], float(req.mix))
            return pipe(prompt_embeds=mixed, num_images_per_prompt=req.n, seeds=seeds, output_type="pil").images
        return pipe([req.caption], num_images_per_prompt=req.n, seeds=seeds, output_type="pil").images


def style_images(pipe: T2IPipeline, image: Image.Image, caption: str) -> list[Image.Image]:
    """One image of ``caption`` in the style of ``image``: z = S(x), then G(z, φ(t)) (Reed et al. 2016 §4.4)."""
    with torch.inference_mode():
        z = pipe.encode_style([image])
        return pipe([caption], num_images_per_prompt=1, latents=z, output_type="pil").images


def png_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ----------------------------------------------------------------------------------------------- the app


def create_app(
    pipe: T2IPipeline,
    limits: ServeLimits | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    allow_hosts: Sequence[str] = (),
) -> Any:
    """The FastAPI app over ``pipe``. One request uses the model at a time (a lock; torch uses every core anyway).

    ``host``/``port`` are where it listens: requests whose ``Host`` or ``Origin`` names another server are refused
    (see `t2igan.apps.serve_guard`); ``port=None`` accepts any port, ``allow_hosts`` adds names (a LAN host name).
    """
    if FastAPI is None:
        require("fastapi", extra="web", what="the web demo")
    limits = limits or ServeLimits()
    lock = threading.Lock()
    with lock, torch.inference_mode():  # once, here: the pipeline runs G once to learn its image size
        about = model_info(pipe)
    app = FastAPI(title="t2igan demo", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.pipe = pipe
    app.state.limits = limits
    pending = threading.BoundedSemaphore(limits.max_pending)

    def error(message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def run_model(
        fn: Callable[..., list[Image.Image]], *args: Any, seeds: list[int] | None = None
    ) -> JSONResponse:
        if not pending.acquire(blocking=False):
            return error("the server is busy; try again in a moment", 503)

        def locked() -> list[Image.Image]:
            with lock:
                return fn(pipe, *args)

        try:
            images = await run_in_threadpool(locked)
            urls = await run_in_threadpool(lambda: [png_data_url(im) for im in images])
        except BadRequest as e:
            return error(str(e), e.status)
        except T2IError as e:
            return error(str(e), 400)
        except Exception:  # keep serving; the details go to the server log
            logger.exception("generation failed")
            return error("generation failed on the server (see its log)", 500)
        finally:
            pending.release()
        return JSONResponse({"images": urls, "seeds": seeds})  # image k was drawn with seeds[k] (None: style)

    @app.exception_handler(BadRequest)
    async def _bad_request(_: Request, e: BadRequest) -> JSONResponse:
        return error(str(e), e.status)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        return {**about, "limits": {k: v for k, v in asdict(limits).items() if k != "max_pending"}}

    @app.post("/api/generate")
    async def generate(request: Request) -> JSONResponse:
        raw = await request.body()  # bounded by the guard: BodyTooLarge passes through to it
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return error('send a JSON object like {"caption": "…", "n": 4, "seed": 0}', 400)
        req = parse_generate(body, limits)
        return await run_model(generate_images, req, seeds=list(range(req.seed, req.seed + req.n)))

    @app.post("/api/style")
    async def style(request: Request) -> JSONResponse:
        if not about["style_transfer"]:
            return error("this model has no style encoder", 501)
        try:
            form = await request.form(max_files=1, max_fields=8)
        except BodyTooLarge:
            raise
        except Exception:
            return error("send a multipart form with 'image' and 'caption'", 400)
        caption = _clean_caption(form.get("caption"), "caption", limits, required=True)
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            return error("image: choose an image file to take the style from", 400)
        data = await upload.read(limits.max_upload_bytes + 1)
        image = await run_in_threadpool(decode_upload, data, upload.content_type, limits)
        return await run_model(style_images, image, caption)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        RequestGuard,
        policy=HostPolicy(host=host, port=port, extra=tuple(allow_hosts)),
        max_body=limits.max_upload_bytes + 64 * 1024,  # an upload plus its multipart envelope
        content_types={
            "/api/generate": ("application/json",),
            "/api/style": ("multipart/form-data", "application/x-www-form-urlencoded"),
        },
    )
    return app


def default_model() -> str:
    from t2igan.pretrained import DEFAULT_MODEL

    return DEFAULT_MODEL


def load_serve_pipeline(pretrained: str | Path, device: str = "cpu") -> T2IPipeline:
    """The `T2IPipeline` of a pretrained folder (``runs/<name>/pretrained``) or run folder; `T2IError` if it is not
    one, or if it cannot read new captions (trained on precomputed embeddings, no text encoder)."""
    from t2igan.pretrained import is_shipped_name, shipped_folder

    path = Path(pretrained)
    if not path.exists() and is_shipped_name(pretrained):
        path = shipped_folder(str(pretrained))  # a model shipped with t2igan, by name
    if not path.is_dir():
        raise T2IError(
            "not a folder or a shipped model name",
            path=path,
            hint="pass a pretrained folder (e.g. runs/demo/pretrained) or leave it out for the shipped model",
        )
    if not (path / "model_index.json").is_file() and (path / "pretrained" / "model_index.json").is_file():
        path = path / "pretrained"  # a run folder works too
    if not (path / "model_index.json").is_file():
        raise T2IError("no model_index.json here", path=path, hint="pass the pretrained folder a training run exported")
    pipe = T2IPipeline.from_pretrained(path, device=resolve_device(device))
    if pipe.text_encoder is None:
        raise T2IError(
            "this model was trained on precomputed caption embeddings, so it cannot read new captions",
            path=path,
            hint="train on embeddings a text encoder made (t2igan encode captions DATA --encoder minilm) "
            "or set data.text_encoder, so the export carries the encoder",
        )
    return pipe


def check_port_free(host: str, port: int) -> None:
    """`T2IError` now, rather than a uvicorn traceback later, if ``host:port`` cannot be bound."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise T2IError(f"cannot listen on {host}:{port} ({e.strerror})", hint="pick another --port") from None


def run_server(app: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@click.command("serve")
@click.argument("pretrained", required=False, metavar="[MODEL]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 = all).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--device", default="cpu", show_default=True, help=f"{DEVICE_HELP}.")
@click.option("--max-images", default=64, show_default=True, type=click.IntRange(1, 1024), help="Largest n.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another name the page may be opened under (repeatable); loopback names and --host always work.",
)
def serve(
    pretrained: str | None, host: str, port: int, device: str, max_images: int, allow_hosts: tuple[str, ...]
) -> None:
    """Serve a web page to try a trained model: caption → grid of images.

    MODEL is a run or pretrained folder or a shipped model name; without it the model shipped with t2igan
    (flowers-64) is served.

    \b
    Example:
      t2igan serve                                 # the shipped model; then open http://127.0.0.1:7860
      t2igan serve runs/demo/pretrained
      t2igan serve runs/demo --host 0.0.0.0 --port 8080
    """
    require("fastapi", "uvicorn", "python_multipart", extra="web", what="t2igan serve")
    device = resolve_device(device)
    check_port_free(host, port)
    with warnings.catch_warnings(record=True) as caught:  # e.g. a damaged style encoder: serve without it
        warnings.simplefilter("always")
        pipe = load_serve_pipeline(pretrained or default_model(), device=device)
        app = create_app(pipe, ServeLimits(max_images=max_images), host=host, port=port, allow_hosts=allow_hosts)
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use the demo", err=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
    click.echo(f"t2igan demo on http://{shown}:{port}  (Ctrl-C stops)")
    run_server(app, host, port)


__all__ = [
    "GenerateRequest",
    "ServeLimits",
    "create_app",
    "decode_upload",
    "generate_images",
    "load_serve_pipeline",
    "model_info",
    "parse_generate",
    "serve",
]
