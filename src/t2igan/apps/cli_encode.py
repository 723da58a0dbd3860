"""`t2igan encode …` — train the char-CNN-RNN (DS-SJE), cache caption embeddings, inspect one caption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from t2igan.utils.errors import T2IError


def open_data(data: str | Path) -> Any:
    """A ``PreparedCache`` from a cache folder, or from a dataset folder (prepared on first use)."""
    from t2igan.data.cache import PreparedCache, prepare_cache

    path = Path(data)
    if not path.exists():
        raise T2IError(
            "no such dataset or cache folder", path=path, hint="create one with: t2igan data synth --out data/flowers"
        )
    try:
        return PreparedCache.open(path)
    except T2IError:
        return PreparedCache.open(prepare_cache(path))


@click.group("encode")
def encode() -> None:
    """Text encoders: train the char-CNN-RNN, store caption embeddings, encode one caption.

    \b
    Examples:
      t2igan encode train data/flowers --out runs/text_cpu --preset cpu
      t2igan encode captions data/flowers --encoder runs/text_cpu
      t2igan encode text "a flower with pink petals" --encoder runs/text_cpu --data data/flowers
    """


@encode.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Encoder folder to write.")
@click.option("--preset", default="cpu", show_default=True, help="cpu (~2 min) | paper (Reed 2016 widths) | tiny")
@click.option("--steps", type=int, default=None, help="Override the preset's number of steps.")
@click.option("--seed", type=int, default=None, help="Override the seed (batches and init).")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --out.")
@click.option(
    "--image-features",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help=".npy [n_images, F] features replacing the image CNN (the paper: GoogLeNet).",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="torch CPU threads (default: the idle cores; 1 is fastest on a busy machine).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(
    data: Path,
    out: Path,
    preset: str,
    steps: int | None,
    seed: int | None,
    resume: bool,
    image_features: Path | None,
    threads: int | None,
    quiet: bool,
) -> None:
    """Train the char-CNN-RNN jointly with an image encoder (DS-SJE, Reed et al. 2016) on DATA.

    \b
    Example (the demo's encoder, ~2 minutes on 2 CPU cores):
      t2igan encode train data/flowers --out runs/text_cpu --preset cpu
    """
    import numpy as np

    from t2igan.text.sje_trainer import make_train_config, train_sje

    cfg = make_train_config(preset, steps=steps, seed=seed)
    cache = open_data(data)
    feats = None
    if image_features is not None:
        try:
            feats = np.load(image_features, allow_pickle=False)
        except (ValueError, OSError):
            raise T2IError(
                "is not a numeric .npy array", path=image_features, hint="save a float array with np.save"
            ) from None
        if feats.ndim != 2 or len(feats) != cache.n:
            raise T2IError(f"features have shape {feats.shape}, expected [{cache.n}, F]", path=image_features)
    m = train_sje(
        cache, out, cfg, resume=resume, image_features=feats, progress=not quiet, log=click.echo, threads=threads
    )
    unseen = (
        f"unseen classes {m['zero_shot_unseen_top1']:.3f} (chance {m['unseen_chance']:.3f}, "
        f"{m['unseen_classes']} classes), "
        if m["unseen_classes"]
        else "no test split (no unseen classes), "
    )
    click.echo(
        f"zero-shot top-1: {unseen}seen {m['zero_shot_seen_top1']:.3f} (chance {m['seen_chance']:.3f}); "
        f"trained in {m['train_seconds']:.0f} s → {out}"
    )


@encode.command("captions")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--encoder", "encoder_ref", required=True, help="Encoder folder, or 'minilm'.")
@click.option("--key", default=None, help="Embedding key (default: fingerprint of encoder + data).")
def captions_cmd(data: Path, encoder_ref: str, key: str | None) -> None:
    """Encode every caption of DATA once and store the embeddings in its cache; prints the key.

    \b
    Example:
      t2igan encode captions data/flowers --encoder minilm
    """
    from tqdm.auto import tqdm

    from t2igan.text.base import load_text_encoder
    from t2igan.text.cache import embedding_key, encode_captions

    cache = open_data(data)
    enc = load_text_encoder(encoder_ref)
    k = key or embedding_key(cache, enc)
    if cache.has_embeddings(k):
        click.echo(f"{k} (already stored)")
        return
    bar = tqdm(desc=f"encoding ({enc.name})", unit="caption")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    k = encode_captions(cache, enc, k, progress=progress)
    bar.close()
    click.echo(k)


@encode.command("text")
@click.argument("caption")
@click.option("--encoder", "encoder_ref", required=True, help="Encoder folder, or 'minilm'.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Dataset/cache for nearest captions.")
@click.option("--top", type=int, default=5, show_default=True, help="How many nearest training captions.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def text_cmd(caption: str, encoder_ref: str, data: Path | None, top: int, as_json: bool) -> None:
    """Encode CAPTION; print its norm and (with --data) the nearest training captions by cosine similarity.

    \b
    Example:
      t2igan encode text "a flower with pink petals" --encoder minilm --data data/flowers
    """
    import numpy as np
    import torch

    from t2igan.text.base import load_text_encoder
    from t2igan.text.cache import embedding_key, encode_captions

    enc = load_text_encoder(encoder_ref)
    v = enc.encode([caption])[0]
    result: dict[str, Any] = {"encoder": enc.name, "dim": enc.dim, "norm": round(float(v.norm()), 4)}
    if data is not None:
        cache = open_data(data)
        if not cache.has_embeddings(embedding_key(cache, enc)):
            click.echo(f"encoding the {cache.n_captions} dataset captions once (cached for next time) …", err=True)
        emb = np.asarray(cache.embeddings(encode_captions(cache, enc)))
        train = np.asarray(cache.train_indices())
        offsets = np.asarray(cache.caption_offsets)
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in train]) if len(train) else np.arange(0)
        e = torch.nn.functional.normalize(torch.as_tensor(emb[rows]), dim=1)
        sims = e @ torch.nn.functional.normalize(v, dim=0)
        nearest: dict[str, float] = {}  # distinct captions only (grammar-made datasets repeat captions)
        for j in torch.topk(sims, min(top * 20, len(rows))).indices.tolist():
            nearest.setdefault(cache.flat_captions[int(rows[j])], round(float(sims[j]), 4))
            if len(nearest) == top:
                break
        result["nearest"] = [{"caption": c, "cosine": s} for c, s in nearest.items()]
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{enc.name}: dim {enc.dim}, norm {result['norm']:.4f}")
    for r in result.get("nearest", []):
        click.echo(f"  {r['cosine']:.3f}  {r['caption']}")


@encode.command("import")
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--embeddings",
    "emb_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="StackGAN .pickle, Reed .t7 folder, or the PyTorch port's .h5/.hdf5.",
)
def import_cmd(data: Path, emb_path: Path) -> None:
    """Store published char-CNN-RNN embeddings for DATA's captions in its cache; prints the key.

    \b
    Example (Reed's per-image .t7 files for Oxford-102):
      t2igan encode import data/oxford102 --embeddings data/flowers_icml
    A model trained on these cannot encode new captions (there is no encoder for them).
    """
    from t2igan.text.precomputed import import_precomputed

    click.echo(import_precomputed(open_data(data), emb_path))
