"""The pretrained folder the sampling pipeline loads (diffusers' layout), and the one writer of its index:

    pretrained/
      model_index.json          components, t2igan version, model family, step, variant, EMA or not — no absolute paths
      generator/                the generator: config.json + model.safetensors (``t2igan.utils.pretrained``)
      text_encoder/…            the encoder's own save_pretrained, or precomputed.json (a marker saying the training
                                embeddings were precomputed, with their cache key and metadata)
      style_encoder/            optional: the style encoder S (``t2igan style train``)
      README.md                 the model card: Hub-style YAML front matter (library_name, pipeline_tag, tags,
                                datasets, metrics by protocol name), what the model is, how to use it, its data, its
                                metrics, the sample grid and the training config
      samples.png               optional: the sample grid the card shows

``export_pretrained`` writes it at the end of training (atomically, replacing only an earlier export);
``T2IPipeline.save_pretrained`` writes the same layout; both — and ``save_style_encoder`` — write the index through
``write_model_index`` and the card through ``write_model_card``. ``load_generator(folder)`` rebuilds any registered
generator from ``generator/``. ``text_side_for_export`` decides what goes into ``text_encoder/`` for a model trained
on a cache's embeddings.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

import t2igan.models  # noqa: F401  (registers every model family's classes for load_pretrained)
from t2igan import __version__
from t2igan.data.cache import PreparedCache
from t2igan.text import load_text_encoder
from t2igan.text.base import TextEncoderLike
from t2igan.text.cache import encoder_that_made
from t2igan.utils.io import atomic_write_json
from t2igan.utils.outputs import atomic_dir, json_says
from t2igan.utils.pretrained import class_name, load_pretrained, save_pretrained

PRETRAINED_KIND = "pretrained"  # the folder's ownership marker (utils.outputs)
is_pretrained_folder = json_says("model_index.json", "_class_name", "T2IPipeline")  # exports older than the marker
INDEX_NAME = "model_index.json"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
PRECOMPUTED_MARKER = "precomputed.json"
# model family → (the paper, Hub tags)
_FAMILIES = {
    "reed": ("Reed et al., *Generative Adversarial Text to Image Synthesis*, ICML 2016", ["gan-int-cls", "reed2016"]),
    "stackgan": ("Zhang et al., *StackGAN*, ICCV 2017", ["stackgan"]),
    "stackgan++": ("Zhang et al., *StackGAN++*, TPAMI 2018", ["stackgan-v2"]),
}


def load_generator(folder: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a generator from ``folder/generator`` (or ``folder`` itself if it holds ``config.json``); eval mode."""
    folder = Path(folder)
    gdir = folder / "generator" if (folder / "generator").is_dir() else folder
    return load_pretrained(gdir, map_location=map_location)


def model_index(
    generator: nn.Module,
    text_encoder: TextEncoderLike | None = None,
    style_encoder: nn.Module | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``model_index.json`` of a pipeline folder: which class each component is, the generator's sizes, and
    ``extra`` (model family, step, variant, embeddings, …)."""

    def entry(obj: Any) -> list[str] | None:
        return (
            None
            if obj is None
            else [type(obj).__module__, class_name(obj) if isinstance(obj, nn.Module) else type(obj).__name__]
        )

    config = getattr(generator, "config", None)
    return {
        "_class_name": "T2IPipeline",
        "_t2igan_version": __version__,
        "generator": entry(generator),
        "text_encoder": entry(text_encoder),
        "style_encoder": entry(style_encoder),
        "z_dim": int(getattr(generator, "z_dim", 0)),
        "text_dim": int(getattr(generator, "text_dim", 0)),
        "image_size": int(getattr(config, "image_size", 0) or 0),
        **extra,
    }


def write_model_index(folder: str | Path, index: dict[str, Any]) -> Path:
    """Write ``folder/model_index.json`` atomically. Paths are stored relative to ``folder``: an absolute path
    inside it becomes relative, one outside it keeps only its last name (the folder must work wherever it is moved)."""
    folder = Path(folder)
    path = folder / INDEX_NAME
    atomic_write_json(path, _portable(index, folder))
    return path


@dataclass
class ModelCard:
    """What a model card says beyond ``model_index.json`` (all optional). ``metrics``: protocol name → value (a
    number, or a dict such as ``{"seen": 0.61, "unseen": 0.58}``); ``config``: the training config (how it was
    trained); ``data``: what it was trained on (`describe_data`); ``samples``: an image copied in as ``samples.png``."""

    name: str | None = None
    description: str | None = None
    datasets: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    samples: Path | None = None
    sections: dict[str, str] = field(default_factory=dict)  # extra "## title" → Markdown text
    load_as: str | None = None  # what to pass to from_pretrained / t2igan sample (default: the folder's path)


def write_model_card(folder: str | Path, index: dict[str, Any], card: ModelCard | None = None) -> Path:
    """Write ``folder/README.md`` (atomically) from the pipeline's ``index`` and ``card``: Hub-style YAML front matter,
    then what the model is, how to load it, its data, its metrics, the sample grid (``samples.png``, copied from
    ``card.samples`` or already in the folder) and the training config. Paths are written as in `write_model_index`
    (no absolute path)."""
    from t2igan.utils.io import atomic_write_text

    folder = Path(folder)
    card = card or ModelCard()
    if card.samples is not None and Path(card.samples).is_file():
        shutil.copyfile(card.samples, folder / SAMPLES_NAME)
    family = str(index.get("model") or "")
    paper, family_tags = _FAMILIES.get(family, ("", []))
    name = card.name or folder.name
    ref = card.load_as or f"path/to/{name}"
    tags = list(dict.fromkeys(["t2igan", "gan", "text-to-image", *family_tags, *card.tags]))
    variant = index.get("variant")
    if family == "reed" and variant and variant not in tags:
        tags.append(str(variant))
    datasets = list(card.datasets) or ([card.data["name"]] if card.data and card.data.get("name") else [])
    front: dict[str, Any] = {"library_name": "t2igan", "pipeline_tag": "text-to-image", "tags": tags}
    if datasets:
        front["datasets"] = datasets
    if card.metrics:
        front["metrics"] = sorted(card.metrics)
        front["model-index"] = [{"name": name, "results": [_hub_result(datasets, card.metrics)]}]
    lines = ["---", yaml.safe_dump(_portable(front, folder), sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [f"# {name}", ""]
    if card.description:
        lines += [card.description.strip(), ""]
    what = f"A {index.get('generator', [None, 'generator'])[-1]}"
    lines += [
        f"{what} trained with [t2igan](https://pypi.org/project/t2igan/) {index.get('_t2igan_version', '')}"
        + (f" ({paper})" if paper else "")
        + ".",
        "",
        "| | |",
        "|---|---|",
    ]
    rows = {
        "model family": family or "?",
        "variant": variant,
        "image size": f"{index.get('image_size')} px" if index.get("image_size") else None,
        "z / text dims": f"{index.get('z_dim')} / {index.get('text_dim')}",
        "text encoder": (index.get("text_encoder") or [None, "none (precomputed embeddings)"])[-1],
        "training steps": index.get("step"),
        "seed": index.get("seed"),
        "EMA generator": index.get("ema"),
    }
    lines += [f"| {k} | {v} |" for k, v in rows.items() if v is not None] + [""]
    lines += [
        "## Usage",
        "",
        "```python",
        "from t2igan.sampling import T2IPipeline",
        "",
        f'pipe = T2IPipeline.from_pretrained("{ref}")',
        'images = pipe(prompt="this flower has five pink petals and a yellow center", num_images_per_prompt=4).images',
        "```",
        "",
        f'From the command line: `t2igan sample {ref} "a caption" --out grid.png`.',
        "",
    ]
    if card.data:
        lines += ["## Training data", "", *(f"- {k}: {v}" for k, v in _portable(card.data, folder).items()), ""]
    if card.metrics:
        lines += ["## Metrics", "", "| metric (protocol) | value |", "|---|---|"]
        lines += [f"| `{k}` | {_fmt(v)} |" for k, v in card.metrics.items()] + [""]
    if (folder / SAMPLES_NAME).is_file():
        lines += ["## Samples", "", f"![samples]({SAMPLES_NAME})", ""]
    for title, text in card.sections.items():
        lines += [f"## {title}", "", text.strip(), ""]
    if card.config:
        config = yaml.safe_dump(_portable(card.config, folder), sort_keys=False, allow_unicode=True).rstrip()
        lines += ["## How it was trained", "", "The training config (`t2igan train -c CONFIG.yaml`):", ""]
        lines += ["```yaml", config, "```", ""]
    path = folder / CARD_NAME
    atomic_write_text(path, "\n".join(lines))
    return path


def card_named(card: ModelCard | None, folder: Path) -> ModelCard:
    """``card`` with a name: its own, else the folder's (the run's for a run's ``pretrained/``)."""
    card = card or ModelCard()
    if card.name:
        return card
    return replace(card, name=folder.parent.name if folder.name == "pretrained" else folder.name)


def describe_data(cache_dir: str | Path | None) -> dict[str, Any] | None:
    """What a model card says about a prepared cache: the source folder's name and layout, sizes, splits, classes."""
    if not cache_dir:
        return None
    try:
        from t2igan.data.cache import PreparedCache

        cache = PreparedCache.open(cache_dir)
    except Exception:  # moved or deleted since training: the card just says less
        return None
    source = cache.meta.get("source", {})
    return {
        "name": Path(str(source.get("path", cache.root))).name,
        "layout": source.get("kind"),
        "images": int(cache.n),
        "captions": int(cache.n_captions),
        "classes": len(cache.class_names),
        "split": f"{len(cache.train_indices())} train / {len(cache.test_indices())} test",
        "sizes": cache.sizes,
    }


def run_card(config: dict[str, Any], run_dir: str | Path) -> ModelCard:
    """The card of a training run's export: its config, its data and its newest sample grid (``samples/``)."""
    grids = sorted(Path(run_dir).glob("samples/step_*.png"))
    return ModelCard(
        config=config,
        data=describe_data((config.get("data") or {}).get("cache")),
        samples=grids[-1] if grids else None,
    )


def _hub_result(datasets: list[str], metrics: dict[str, Any]) -> dict[str, Any]:
    values = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            values += [{"type": key, "name": f"{key} ({k})", "value": v} for k, v in value.items() if _is_num(v)]
        elif _is_num(value):
            values.append({"type": key, "name": key, "value": value})
    ds = datasets[0] if datasets else "unknown"
    return {"task": {"type": "text-to-image"}, "dataset": {"name": ds, "type": ds}, "metrics": values}


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _portable(obj: Any, root: Path) -> Any:
    if isinstance(obj, dict):
        return {k: _portable(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_portable(v, root) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj):
        p = Path(obj)
        return str(p.relative_to(root.resolve())) if p.is_relative_to(root.resolve()) else p.name
    return obj


def save_text_side(folder: Path, text_encoder: TextEncoderLike | None, info: dict[str, Any]) -> None:
    """``folder`` = ``text_encoder/``: the encoder's own ``save_pretrained``, or the precomputed marker ``info``."""
    if isinstance(text_encoder, TextEncoderLike):
        text_encoder.save_pretrained(folder)
    else:
        atomic_write_json(folder / PRECOMPUTED_MARKER, _portable({"precomputed": True, **info}, folder.parent))


def text_side_for_export(
    text_dim: int,
    *,
    cache: PreparedCache | None = None,
    key: str | None = None,
    text_encoder: TextEncoderLike | None = None,
    text_encoder_dir: str | Path | None = None,
) -> tuple[TextEncoderLike | None, dict[str, Any]]:
    """``(encoder, embeddings info)`` for the export of a generator trained on ``cache``'s embeddings ``key``.

    The encoder is, in order: ``text_encoder`` (the object that made the embeddings), the one saved in
    ``text_encoder_dir`` (``data.text_encoder``), or the one the cache's metadata names if it still loads here
    (``text.cache.encoder_that_made``); else ``None`` and the export records the embeddings as precomputed.
    An unconditional generator (``text_dim`` 0) has no text side.
    """
    if text_dim == 0:
        return None, {"type": "unconditional", "dim": 0}
    meta: dict[str, Any] = {}
    if cache is not None and key and cache.has_embeddings(key):
        meta = cache.embedding_meta(key)
    info = {"type": "precomputed", "key": key, "dim": text_dim, "meta": meta}
    if text_encoder is not None:
        return text_encoder, info
    if text_encoder_dir:
        return load_text_encoder(text_encoder_dir), info
    return encoder_that_made(meta), info


def export_pretrained(
    generator: nn.Module,
    folder: str | Path,
    *,
    model_name: str,
    text_encoder: TextEncoderLike | None = None,
    embeddings: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    card: ModelCard | None = None,
) -> Path:
    """Write the pretrained folder atomically (replacing an older export), with its model card (``card``).

    ``text_encoder`` (a `TextEncoderLike`) is saved to ``text_encoder/`` with its own ``save_pretrained``;
    otherwise ``text_encoder/precomputed.json`` records ``embeddings`` (cache key, dim, encoder metadata) so the
    pipeline can tell the user which encoder to pair with the generator.
    """
    folder = Path(folder)
    has_encoder = isinstance(text_encoder, TextEncoderLike)
    card = card_named(card, folder)
    with atomic_dir(folder, kind=PRETRAINED_KIND, is_own=is_pretrained_folder) as tmp:
        save_pretrained(generator, tmp / "generator")
        save_text_side(tmp / "text_encoder", text_encoder, embeddings or {})
        index = model_index(
            generator,
            text_encoder if has_encoder else None,
            model=model_name,
            embeddings=embeddings or {},
            **(extra or {}),
        )
        write_model_index(tmp, index)
        write_model_card(tmp, index, card)
    return folder
