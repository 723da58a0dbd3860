"""Fixtures for the web demo tests: tiny real pipelines saved to temporary folders and a live uvicorn server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture
def tiny_pipe(tiny_pretrained: Path) -> Any:
    """A fresh real `T2IPipeline` loaded from the tiny pretrained folder (with a style encoder)."""
    from t2igan.sampling import T2IPipeline

    return T2IPipeline.from_pretrained(tiny_pretrained)


@pytest.fixture
def tiny_pipe_no_style(tiny_pretrained_no_style: Path) -> Any:
    from t2igan.sampling import T2IPipeline

    return T2IPipeline.from_pretrained(tiny_pretrained_no_style)


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


def _tiny_components(style: bool) -> tuple[Any, Any, Any]:
    from t2igan.models.reed import ReedConfig, ReedGenerator
    from t2igan.models.style import StyleEncoder, StyleEncoderConfig
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig

    torch.manual_seed(0)
    gen = ReedGenerator(ReedConfig(image_size=32, z_dim=8, text_dim=16, proj_dim=8, ngf=8, ndf=8))
    text = CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=16))
    return gen, text, StyleEncoder(StyleEncoderConfig(image_size=32, z_dim=8, width=8)) if style else None


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real pretrained folder (untrained 32 px ReedGenerator, tiny char-CNN-RNN, style encoder) via the real
    `T2IPipeline.save_pretrained` — what `t2igan serve` loads in production — inside a run folder whose
    config.yaml names the prepared cache it "trained" on (the page's example captions come from there)."""
    import yaml

    from t2igan.data.cache import prepare_cache
    from t2igan.data.synthetic import write_synthetic_dataset
    from t2igan.sampling import T2IPipeline

    run = tmp_path_factory.mktemp("serve")
    cache = prepare_cache(write_synthetic_dataset(run / "flowers", n=12, size=16, seed=0), sizes=(16,), progress=False)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"cache": str(cache)}}))
    folder = run / "pretrained"
    T2IPipeline(*_tiny_components(style=True)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pretrained_no_style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model without a style encoder."""
    from t2igan.sampling import T2IPipeline

    folder = tmp_path_factory.mktemp("serve_no_style") / "pretrained"
    T2IPipeline(*_tiny_components(style=False)).save_pretrained(folder)
    return folder
