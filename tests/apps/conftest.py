"""Fixtures for the web demo tests: a tiny stand-in pipeline and a live uvicorn server in a thread."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from PIL import Image

from t2igan.utils.images import to_pil


@dataclass
class _Output:
    images: list[Image.Image]


class StandInPipeline:
    """The `T2IPipeline` call shape with no network: colour from the caption embedding, texture from the seed."""

    image_size = 32
    z_dim = 8

    def __init__(self, *, style: bool = True, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self.style_encoder = object() if style else None  # like T2IPipeline: None when the folder has none

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        rows = []
        for p in prompts:
            h = hashlib.sha256(p.encode()).digest()
            rows.append(torch.tensor([b / 127.5 - 1 for b in h[:3]]))
        return torch.stack(rows)

    def encode_style(self, images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([torch.full((self.z_dim,), float(im.convert("L").getpixel((0, 0))) / 255) for im in images])

    def __call__(
        self,
        prompt: list[str] | None = None,
        *,
        num_images_per_prompt: int = 1,
        seeds: list[int] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
    ) -> _Output:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        emb = prompt_embeds if prompt_embeds is not None else self.encode_prompt(list(prompt or []))
        n = emb.shape[0] * num_images_per_prompt
        seeds = seeds or list(range(n))
        out = []
        for i in range(n):
            g = torch.Generator().manual_seed(seeds[i % len(seeds)])
            noise = torch.rand(3, self.image_size, self.image_size, generator=g) * 0.4 - 0.2
            if latents is not None:
                noise = noise + latents[0, 0]
            out.append((emb[i // num_images_per_prompt].view(3, 1, 1) * 0.8 + noise).clamp(-1, 1))
        return _Output(images=to_pil(torch.stack(out)))


@pytest.fixture
def standin() -> StandInPipeline:
    return StandInPipeline()


@pytest.fixture
def standin_cls() -> type[StandInPipeline]:
    """The class itself, for tests that subclass it (test modules cannot import conftest under importlib mode)."""
    return StandInPipeline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1:<free port> in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def serve_live() -> Any:
    """`live_server` as a fixture: ``with serve_live(app) as url: …``."""
    return live_server


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real pretrained folder (untrained 32 px ReedGenerator, tiny char-CNN-RNN, style encoder) via the real
    `T2IPipeline.save_pretrained` — what `t2igan serve` loads in production — inside a run folder whose
    config.yaml names the prepared cache it "trained" on (the page's example captions come from there)."""
    import yaml

    from t2igan.data.cache import prepare_cache
    from t2igan.data.synthetic import write_synthetic_dataset
    from t2igan.models.reed import ReedConfig, ReedGenerator
    from t2igan.models.style import StyleEncoder, StyleEncoderConfig
    from t2igan.sampling import T2IPipeline
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig

    torch.manual_seed(0)
    gen = ReedGenerator(ReedConfig(image_size=32, z_dim=8, text_dim=16, proj_dim=8, ngf=8, ndf=8))
    text = CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=16))
    style = StyleEncoder(StyleEncoderConfig(image_size=32, z_dim=8, width=8))
    run = tmp_path_factory.mktemp("serve")
    cache = prepare_cache(write_synthetic_dataset(run / "flowers", n=12, size=16, seed=0), sizes=(16,), progress=False)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"cache": str(cache)}}))
    folder = run / "pretrained"
    T2IPipeline(gen, text, style).save_pretrained(folder)
    return folder
