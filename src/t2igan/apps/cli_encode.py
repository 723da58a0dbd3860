"""`t2igan encode …` — train the char-CNN-RNN (DS-SJE), cache caption embeddings, inspect one caption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from t2igan.data.cache import open_cache
from t2igan.utils.progress import progress_bar


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
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a DS-SJE setting (repeat), e.g. image_size=64 or classes_per_batch=40.",
)
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
def train_cmd(
    data: Path,
    out: Path,
    preset: str,
    steps: int | None,
    seed: int | None,
    overrides: tuple[str, ...],
    resume: bool,
    image_features: Path | None,
    threads: int | None,
) -> None:
    """Train the char-CNN-RNN jointly with an image encoder (DS-SJE, Reed et al. 2016) on DATA.

    \b
    Example (the demo's encoder, ~2 minutes on 2 CPU cores):
      t2igan encode train data/flowers --out runs/text_cpu --preset cpu
      t2igan encode train data/flowers --out runs/text_64px --steps 8000 --set image_size=64
    """
    from t2igan.text.sje_image import load_image_features
    from t2igan.text.sje_trainer import make_train_config, train_sje
    from t2igan.training.config import parse_override

    sets = dict(parse_override(item) for item in overrides)
    for name, value in (("steps", steps), ("seed", seed)):
        if value is not None:
            sets[name] = value
    cfg = make_train_config(preset, **sets)
    cache = open_cache(data)
    feats = None if image_features is None else load_image_features(image_features, cache.n)
    m = train_sje(cache, out, cfg, resume=resume, image_features=feats, threads=threads)
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
    from t2igan.text.base import load_text_encoder
    from t2igan.text.cache import embedding_key, encode_captions

    cache = open_cache(data)
    enc = load_text_encoder(encoder_ref)
    k = key or embedding_key(cache, enc)
    if cache.has_embeddings(k):
        click.echo(f"{k} (already stored)")
        return
    bar = progress_bar(desc=f"encoding ({enc.name})", unit="caption")

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
    from t2igan.text.base import load_text_encoder
    from t2igan.text.nearest import nearest_captions

    enc = load_text_encoder(encoder_ref)
    v = enc.encode([caption])[0]
    result: dict[str, Any] = {"encoder": enc.name, "dim": enc.dim, "norm": round(float(v.norm()), 4)}
    if data is not None:
        nearest = nearest_captions(open_cache(data), enc, v, top)
        result["nearest"] = [{"caption": c, "cosine": s} for c, s in nearest]
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

    click.echo(import_precomputed(open_cache(data), emb_path))
