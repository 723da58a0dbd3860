"""Joint training of the char-CNN-RNN φ(t) and an image encoder θ(v) with the DS-SJE loss (Reed et al., CVPR 2016).

Each step draws ``classes_per_batch`` distinct training classes, ``images_per_class`` images of each and one random
caption per image (the paper: 40 classes × 1), and minimises ``ds_sje_loss`` (eq. 4–6) with RMSprop (paper: lr 7e-4,
× 0.98 per epoch, gradient norm clipped at 5) or Adam (the CPU preset: converges in fewer steps). The batch of step
``k`` is a pure function of ``(seed, k)`` and checkpoints (``utils/checkpoint.py``, the GAN trainer's format) hold
model + optimiser + step, so ``resume=True`` continues bit-exactly (only ``RESUMABLE`` options may change). SIGTERM or
Ctrl-C finish the step and checkpoint (``utils/signals.py``, shared with the GAN trainer). The output folder is a
text-encoder folder (``load_text_encoder(out)``) with the image side in ``out/image_encoder/`` and the zero-shot
figures in ``out/metrics.json``; it must be new, empty or an earlier DS-SJE output (never someone else's folder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2igan.data.types import CacheLike
from t2igan.text.base import cpu_threads
from t2igan.text.char_cnn_rnn import PRESETS, CharCnnRnn
from t2igan.text.sje import ds_sje_loss
from t2igan.text.sje_image import IMAGE_ENCODER_DIR, SjeFeatureEncoder, SjeImageConfig, SjeImageEncoder
from t2igan.text.word_rnn import PRESETS as WORD_PRESETS
from t2igan.text.word_rnn import WordRnn
from t2igan.text.zero_shot import pick_image_size, zero_shot_accuracy
from t2igan.utils.checkpoint import list_checkpoints, load_latest, save_checkpoint
from t2igan.utils.config import build_config, config_diff
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_path, atomic_write_json
from t2igan.utils.outputs import claim_folder
from t2igan.utils.precision import native_bf16
from t2igan.utils.progress import progress_bar
from t2igan.utils.seed import derive_seed
from t2igan.utils.signals import stop_on_signals

logger = logging.getLogger(__name__)


TextModel = CharCnnRnn | WordRnn
TEXT_MODELS: dict[str, dict[str, Any]] = {"char-cnn-rnn": PRESETS, "word-rnn": WORD_PRESETS}  # model → its presets


@dataclass
class SjeTrainConfig:
    """Everything that defines a DS-SJE run (saved as ``train_config.json``; resume refuses a different one)."""

    text_model: str = "char-cnn-rnn"  # φ(t): "char-cnn-rnn" (the paper's best) | "word-rnn" (its word-LSTM)
    text_preset: str = "cpu"  # φ(t) widths: "cpu" | "paper" | "tiny" (char_cnn_rnn.PRESETS / word_rnn.PRESETS)
    image_channels: tuple[int, ...] = (32, 64, 128)  # θ(v) CNN widths (one stride-2 stage each)
    image_size: int = 32  # θ(v) input size (cached images are resized)
    image_extra_conv: bool = False  # θ(v): a 3×3 conv before each stride-2 conv (5× the cost, no gain on CPU)
    steps: int = 4000  # zero-shot top-1 on unseen classes 0.85 (800 steps: 0.67; docs/quality.md)
    classes_per_batch: int = 64  # distinct classes per minibatch (paper: 40)
    images_per_class: int = 1  # images per class per minibatch (paper: 1)
    optimizer: str = "adam"  # "adam" | "rmsprop" (paper)
    lr: float = 4e-3  # Adam; the paper: RMSprop 7e-4
    lr_decay: float = 0.98  # × per epoch of training images (paper: 0.98)
    grad_clip: float = 5.0  # max global gradient norm (paper: 5)
    precision: str = "auto"  # fp32 | bf16 (autocast; the loss stays fp32) | auto: bf16 where the CPU has it natively
    #                          (1.4× faster at 4,000 steps here, zero-shot top-1 unseen 0.85 vs 0.815 fp32)
    flip: bool = True  # random horizontal flips of the image side
    seed: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    eval_captions_per_class: int = 200  # captions averaged per class for zero-shot evaluation
    eval_seen_images: int = 2000  # training-class images scored for the seen-class figure

    def __post_init__(self) -> None:
        self.image_channels = tuple(int(c) for c in self.image_channels)
        if self.text_model not in TEXT_MODELS:
            raise T2IError(f"unknown text model {self.text_model!r}", hint=f"choose one of {sorted(TEXT_MODELS)}")
        presets = TEXT_MODELS[self.text_model]
        if self.text_preset not in presets:
            raise T2IError(f"unknown text preset {self.text_preset!r}", hint=f"choose one of {sorted(presets)}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise T2IError(f"precision must be fp32, bf16 or auto, got {self.precision!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise T2IError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        if self.steps < 1 or self.classes_per_batch < 2 or self.images_per_class < 1:
            raise T2IError("steps ≥ 1, classes_per_batch ≥ 2 and images_per_class ≥ 1 are required")


TRAIN_PRESETS: dict[str, SjeTrainConfig] = {
    # The demo's encoder: ~2 minutes on 2 busy CPU cores for the synthetic flowers (64 classes × 1 image per step).
    "cpu": SjeTrainConfig(),
    # The paper's widths and optimiser (RMSprop 7e-4, 40 classes × 1 image); slow on CPU.
    "paper": SjeTrainConfig(
        text_preset="paper",
        image_channels=(64, 128, 256, 512),
        image_size=64,
        image_extra_conv=True,
        steps=20000,
        classes_per_batch=40,
        images_per_class=1,
        optimizer="rmsprop",
        lr=7e-4,
        precision="fp32",
    ),
    # Unit tests.
    "tiny": SjeTrainConfig(
        text_preset="tiny",
        image_channels=(8, 8),
        image_size=16,
        image_extra_conv=True,
        steps=6,
        classes_per_batch=4,
        images_per_class=2,
        checkpoint_every=3,
        eval_captions_per_class=20,
        eval_seen_images=50,
    ),
}


# Options that may differ between a run and its --resume: the horizon, checkpoint cadence and evaluation only.
RESUMABLE = ("steps", "checkpoint_every", "keep_checkpoints", "eval_captions_per_class", "eval_seen_images")
SJE_RUN_KIND = "sje-run"  # the output folder's ownership marker (utils.outputs)


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast of the encoders' forward (CPU training); ``auto`` where the CPU computes bf16 natively."""
    if precision == "bf16" or (precision == "auto" and native_bf16(torch.device("cpu"))):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_train_config(preset: str = "cpu", **overrides: Any) -> SjeTrainConfig:
    """A preset plus overrides (``None`` = keep the preset's), through the typed config loader."""
    if preset not in TRAIN_PRESETS:
        raise T2IError(f"unknown training preset {preset!r}", hint=f"choose one of {sorted(TRAIN_PRESETS)}")
    values = {**_config_json(TRAIN_PRESETS[preset]), **{k: v for k, v in overrides.items() if v is not None}}
    return build_config(SjeTrainConfig, values, "sje")


def _config_json(cfg: SjeTrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["image_channels"] = list(d["image_channels"])
    return d


class _TrainData:
    """Training images (resized once, uint8 ``[n, 3, S, S]``) and tokenised captions, in memory."""

    def __init__(self, cache: CacheLike, cfg: SjeTrainConfig, text_enc: TextModel, features: np.ndarray | None) -> None:
        idx = np.asarray(cache.train_indices(), dtype=np.int64)
        if len(idx) == 0:
            raise T2IError("has no training images", path=cache.root, hint="check trainvalclasses.txt")
        self.indices = idx
        self.class_ids = np.asarray(cache.class_ids)[idx]
        self.classes = np.unique(self.class_ids)
        if len(self.classes) < 2:
            raise T2IError(
                f"DS-SJE needs at least 2 training classes, the data has {len(self.classes)}",
                path=cache.root,
                hint="use the pretrained MiniLM encoder instead: t2igan encode captions DATA --encoder minilm",
            )
        self.by_class = [np.flatnonzero(self.class_ids == c) for c in self.classes]
        offsets = np.asarray(cache.caption_offsets)
        self.cap_count = offsets[idx + 1] - offsets[idx]
        caps = training_captions(cache)
        self.cap_base = np.concatenate([[0], np.cumsum(self.cap_count)[:-1]])  # row of image k's first caption
        # chars: 70 symbols + padding fit in a byte; words: as many indices as the vocabulary has
        dtype = torch.uint8 if isinstance(text_enc, CharCnnRnn) or text_enc.vocab_size <= 256 else torch.int32
        chunks = [text_enc.tokenize(caps[i : i + 8192], warn=False).to(dtype) for i in range(0, len(caps), 8192)]
        width = max(c.shape[1] for c in chunks)  # word chunks are as wide as their longest caption
        self.tokens = torch.cat([F.pad(c, (0, width - c.shape[1])) for c in chunks])  # [captions, width]
        self.trim = isinstance(text_enc, WordRnn)  # a word batch is cut to its longest caption (chars: fixed length)
        self.features = None if features is None else torch.as_tensor(features[idx], dtype=torch.float32)
        self.images = None if features is not None else self._load_images(cache, idx, cfg.image_size)

    @staticmethod
    def _load_images(cache: CacheLike, idx: np.ndarray, size: int) -> torch.Tensor:
        arr = cache.images(pick_image_size(cache, size))
        out = []
        for i in range(0, len(idx), 1024):
            x = torch.as_tensor(np.asarray(arr[idx[i : i + 1024]])).permute(0, 3, 1, 2).float()
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear")
            out.append(x.round().clamp(0, 255).to(torch.uint8))
        return torch.cat(out)

    def batch(self, cfg: SjeTrainConfig, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The minibatch of ``step``: (image input, caption tokens, class labels) — a pure function of (seed, step)."""
        rng = np.random.default_rng(derive_seed(cfg.seed, "sje-batch", step))
        n_cls = min(cfg.classes_per_batch, len(self.classes))
        cls_pos = rng.choice(len(self.classes), n_cls, replace=False)
        rows = np.concatenate([rng.choice(self.by_class[c], cfg.images_per_class) for c in cls_pos])
        caption = self.cap_base[rows] + rng.integers(0, self.cap_count[rows])
        labels = torch.as_tensor(self.class_ids[rows])
        tokens = self.tokens[torch.as_tensor(caption)].long()
        if self.trim:
            tokens = tokens[:, : max(1, int((tokens != 0).sum(1).max()))]
        if self.features is not None:
            return self.features[torch.as_tensor(rows)], tokens, labels
        x = self.images[torch.as_tensor(rows)].float().div_(127.5).sub_(1.0)
        if cfg.flip:
            flip = torch.as_tensor(rng.random(len(rows)) < 0.5)
            x[flip] = x[flip].flip(-1)
        return x, tokens, labels


def training_captions(cache: CacheLike) -> list[str]:
    """Every caption of the training images, image by image (the order ``_TrainData`` indexes)."""
    offsets = np.asarray(cache.caption_offsets)
    flat = cache.flat_captions
    idx = np.asarray(cache.train_indices(), dtype=np.int64)
    return [flat[j] for i in idx for j in range(offsets[i], offsets[i + 1])]


def build_text_model(cfg: SjeTrainConfig, cache: CacheLike) -> TextModel:
    """An untrained φ(t) of ``cfg.text_model`` (a word model's vocabulary: the training captions' words)."""
    if cfg.text_model == "word-rnn":
        return WordRnn.build(training_captions(cache), cfg.text_preset)
    return CharCnnRnn.from_preset(cfg.text_preset)


def _resume_state(out: Path, cfg: SjeTrainConfig) -> dict[str, Any] | None:
    """The newest valid checkpoint of ``out`` (``utils/checkpoint.py``), checked against ``cfg``; None if none."""
    root = out / "checkpoints"
    if not list_checkpoints(root) and any(root.glob("step_*.pt")):
        raise T2IError(
            "holds only DS-SJE checkpoints of an older t2igan (step_*.pt), which this version does not read",
            path=root,
            hint="train into a new --out",
        )
    ckpt = load_latest(root)
    if ckpt is None:
        return None
    diff = config_diff(ckpt["config"], _config_json(cfg), ignore=RESUMABLE)
    if diff:
        shown = "; ".join(f"{k}: {a!r} → {b!r}" for k, a, b in diff[:3])
        raise T2IError(
            f"checkpoint was written with different training options ({shown})",
            path=ckpt["path"],
            hint="resume with the same options (only steps, checkpointing and evaluation may change) or a new --out",
        )
    return ckpt


def train_sje(
    cache: CacheLike,
    out: str | Path,
    cfg: SjeTrainConfig | None = None,
    *,
    resume: bool = False,
    image_features: np.ndarray | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train φ(t) + θ(v) with DS-SJE on a ``PreparedCache``; write the encoder folder ``out``; return the metrics.

    ``image_features`` (``[cache.n, F]`` float, aligned with the cache's images) replaces the image CNN by a linear
    map of those features (the paper's GoogLeNet setting). ``resume=True`` continues from the latest checkpoint.
    ``threads`` (default: ``base.auto_threads()``) sets torch's CPU threads for the run (restored afterwards); Ctrl-C or
    SIGTERM writes a checkpoint before stopping.
    """
    with cpu_threads(threads):
        return _train_sje(cache, out, cfg, resume, image_features, progress)


def _train_sje(
    cache: CacheLike,
    out: str | Path,
    cfg: SjeTrainConfig | None,
    resume: bool,
    image_features: np.ndarray | None,
    progress: bool,
) -> dict[str, Any]:
    cfg = cfg or SjeTrainConfig()
    out = Path(out)
    claim_folder(out, SJE_RUN_KIND, is_own=lambda f: (f / "train_config.json").is_file())
    if not resume and (list_checkpoints(out / "checkpoints") or any((out / "checkpoints").glob("step_*.pt"))):
        raise T2IError(
            "already holds a DS-SJE run", path=out, hint="pass --resume to continue it or choose a new --out"
        )
    t0 = time.perf_counter()
    feat_dim = 0 if image_features is None else int(image_features.shape[1])
    with torch.random.fork_rng(devices=[]):  # nn.Module init draws from the global RNG: seed it, then restore it
        torch.manual_seed(derive_seed(cfg.seed, "sje-init"))
        text_enc = build_text_model(cfg, cache)
        img_cfg = SjeImageConfig(text_enc.dim, cfg.image_size, cfg.image_channels, feat_dim, cfg.image_extra_conv)
        img_enc: SjeImageEncoder = SjeFeatureEncoder(img_cfg) if feat_dim else SjeImageEncoder(img_cfg)
    params = list(text_enc.parameters()) + list(img_enc.parameters())
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=cfg.lr)
    else:
        opt = torch.optim.RMSprop(params, lr=cfg.lr)
    data = _TrainData(cache, cfg, text_enc, image_features)
    steps_per_epoch = max(1, len(data.indices) // (cfg.classes_per_batch * cfg.images_per_class))

    start, history, seconds_before = 0, [], 0.0
    if resume:
        ckpt = _resume_state(out, cfg)
        if ckpt is not None:
            state = ckpt["state"]
            text_enc.load_state_dict(state["text"])
            img_enc.load_state_dict(state["image"])
            opt.load_state_dict(state["optim"])
            start, history = ckpt["step"], json.loads(state["history"])
            seconds_before = float(ckpt["meta"].get("seconds", 0.0))
            logger.info("resumed from step %d", start)
    atomic_write_json(out / "train_config.json", _config_json(cfg))

    bar = progress_bar(
        range(start, cfg.steps), enabled=progress, initial=start, total=cfg.steps, desc="DS-SJE", unit="step"
    )
    text_enc.train()
    img_enc.train()
    stats: dict[str, float] = {}

    def checkpoint(done: int) -> None:
        state = {
            "text": text_enc.state_dict(),
            "image": img_enc.state_dict(),
            "optim": opt.state_dict(),
            "history": json.dumps(history),
        }
        meta = {"seconds": seconds_before + time.perf_counter() - t0}
        save_checkpoint(out / "checkpoints", done, state, _config_json(cfg), meta, keep=cfg.keep_checkpoints)

    done, stop = start, []
    try:
        with stop_on_signals(stop.append):  # SIGTERM / first Ctrl-C: finish the step, checkpoint, stop
            for step in bar:
                lr = cfg.lr * cfg.lr_decay ** (step / steps_per_epoch)  # paper: × 0.98 per epoch (a function of step)
                for g in opt.param_groups:
                    g["lr"] = lr
                x, tokens, labels = data.batch(cfg, step)
                with _autocast(cfg.precision):
                    img_emb, txt_emb = img_enc(x), text_enc.forward_tokens(tokens)
                loss, stats = ds_sje_loss(img_emb.float(), txt_emb.float(), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                done = step + 1
                if step % 20 == 0 or done == cfg.steps:
                    history.append({"step": done, "loss": loss.item(), **{k: round(v, 4) for k, v in stats.items()}})
                    bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{stats['acc_txt']:.2f}")
                if done % cfg.checkpoint_every == 0 or done == cfg.steps or stop:
                    checkpoint(done)
                if stop:
                    logger.info("%s: checkpoint at step %d saved; continue with --resume", stop[0], done)
                    raise KeyboardInterrupt(stop[0])
    except KeyboardInterrupt:
        if done > start and not stop:  # an interrupt the handler did not see (e.g. not the main thread): save
            checkpoint(done)
            logger.info("interrupted: checkpoint at step %d saved; continue with --resume", done)
        raise
    finally:
        bar.close()
    train_seconds = seconds_before + time.perf_counter() - t0

    text_enc.eval()
    img_enc.eval()
    img_enc.save_pretrained(out / IMAGE_ENCODER_DIR)
    text_enc.save_pretrained(out)
    logger.info("evaluating zero-shot retrieval …")
    no_test = {"top1": None, "chance": None, "classes": 0}  # a dataset without a test split: nothing unseen to score
    unseen = (
        zero_shot_accuracy(
            text_enc,
            img_enc,
            cache,
            "test",
            max_captions_per_class=cfg.eval_captions_per_class,
            image_features=image_features,
            seed=cfg.seed,
        )
        if len(cache.test_indices())
        else no_test
    )
    seen = zero_shot_accuracy(
        text_enc,
        img_enc,
        cache,
        "train",
        max_images=cfg.eval_seen_images,
        max_captions_per_class=cfg.eval_captions_per_class,
        image_features=image_features,
        seed=cfg.seed,
    )
    metrics = {
        "zero_shot_unseen_top1": unseen["top1"],
        "unseen_chance": unseen["chance"],
        "unseen_classes": unseen["classes"],
        "zero_shot_seen_top1": seen["top1"],
        "seen_chance": seen["chance"],
        "seen_classes": seen["classes"],
        "train_seconds": round(train_seconds, 1),
        "steps": cfg.steps,
        "final_loss": history[-1]["loss"] if history else None,
        "text_dim": text_enc.dim,
    }
    atomic_write_json(out / "metrics.json", metrics)
    with atomic_path(out / "history.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
    return metrics


def load_sje(folder: str | Path) -> tuple[TextModel, SjeImageEncoder]:
    """The joint space saved by ``train_sje``: ``(text encoder φ, image encoder θ)``, both in eval mode."""
    from t2igan.text.base import load_text_encoder
    from t2igan.text.sje_image import load_sje_image_encoder

    text = load_text_encoder(folder)
    if not isinstance(text, CharCnnRnn | WordRnn):
        raise T2IError(
            f"holds a {text.type_name!r} encoder, which has no image side",
            path=folder,
            hint="use a folder written by `t2igan encode train`",
        )
    return text, load_sje_image_encoder(folder)


def ensure_char_cnn_rnn(
    cache: CacheLike, out: str | Path, preset: str = "cpu", *, progress: bool = True, **overrides: Any
) -> tuple[str, dict[str, Any]]:
    """The demo's one call: train the char-CNN-RNN (``preset``) into ``out`` unless it is already there (an
    interrupted run resumes), then store the caption embeddings in ``cache``. Returns ``(embedding key, metrics)``.

    ``TextImageDataset(cache, embeddings=key)`` then serves φ(t); ``load_text_encoder(out)`` encodes new captions.
    """
    from t2igan.text.base import load_text_encoder
    from t2igan.text.cache import encode_captions

    out = Path(out)
    if (out / "metrics.json").exists() and (out / "config.json").exists():
        metrics = json.loads((out / "metrics.json").read_text())
    else:
        metrics = train_sje(cache, out, make_train_config(preset, **overrides), resume=True, progress=progress)
    return encode_captions(cache, load_text_encoder(out)), metrics
