"""What a run writes besides checkpoints: ``logs/metrics.jsonl``, TensorBoard scalars/images, fixed-z sample grids.

Only the main process writes (``enabled``). TensorBoard is an optional extra: without it a one-line notice is printed
and ``metrics.jsonl`` remains the record.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2igan.data.dataset import TextImageDataset
from t2igan.utils.images import make_grid, save_image
from t2igan.utils.io import atomic_write_text
from t2igan.utils.seed import derive_seed, torch_generator

logger = logging.getLogger(__name__)


class RunLog:
    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool) -> None:
        self.run_dir, self.enabled, self.tensorboard = Path(run_dir), enabled, tensorboard
        self.writer: Any = None

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "logs" / "metrics.jsonl"

    def open(self) -> None:
        if not (self.enabled and self.tensorboard):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info(
                "note: tensorboard is not installed — logging to logs/metrics.jsonl only "
                "(pip install 't2igan[tensorboard]')"
            )
            return
        self.writer = SummaryWriter(str(self.run_dir / "logs"))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line (must hold ``step``) and the numeric values as TensorBoard scalars."""
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if k not in ("step", "time") and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"train/{k}", v, record["step"])

    @property
    def eval_path(self) -> Path:
        return self.run_dir / "logs" / "eval.jsonl"

    def eval(self, record: dict[str, Any]) -> None:
        """Append one training-time evaluation (``logs/eval.jsonl``; TensorBoard ``eval/*``)."""
        if not self.enabled:
            return
        with open(self.eval_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if k not in ("step", "best") and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"eval/{k}", v, record["step"])

    def truncate(self, step: int) -> None:
        """On resume, drop lines written after the checkpoint's step (they will be written again)."""
        if not self.enabled:
            return
        for path in (self.metrics_path, self.eval_path):
            if path.is_file():
                keep = [ln for ln in path.read_text().splitlines() if ln.strip() and _line_step(ln) <= step]
                atomic_write_text(path, "".join(ln + "\n" for ln in keep))

    def grid(self, step: int, images: torch.Tensor, cols: int, captions: list[str]) -> None:
        """``samples/step_XXXXXXX.png`` (one row per caption, written under it) and the TensorBoard image."""
        if not self.enabled:
            return
        grid = make_grid(images, cols, row_captions=captions or None)
        save_image(grid, self.run_dir / "samples" / f"step_{step:07d}.png")
        if self.writer is not None:
            self.writer.add_image("samples", np.asarray(grid), step, dataformats="HWC")


def fixed_sample_inputs(dataset: Any, z_dim: int, seed: int, n: int, cols: int = 8) -> dict[str, Any]:
    """``n`` samples spread evenly over the dataset (datasets are often ordered by class: this shows several) ×
    ``cols`` fixed z: the same grid inputs at every step and after resume.
    The grid's rows are labelled with their captions when ``dataset`` is a `TextImageDataset`."""
    n = min(n, len(dataset))
    b = dataset.batch(np.linspace(0, len(dataset) - 1, n).round().astype(np.int64), 0)
    z = torch.randn(cols, z_dim, generator=torch_generator(derive_seed(seed, "fixed-z")))
    captions: list[str] = []
    if isinstance(dataset, TextImageDataset):
        captions = [str(dataset.cache.flat_captions[int(i)]) for i in b["caption_idx"]]
    return {
        "z": z.repeat(n, 1),
        "text_emb": b["text_emb"].float().repeat_interleave(cols, 0),
        "captions": captions,
        "cols": cols,
    }


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, ValueError, TypeError):
        return 1 << 62  # drop unparsable lines
