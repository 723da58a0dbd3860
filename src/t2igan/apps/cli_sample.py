"""`t2igan sample`, `t2igan interpolate`, `t2igan style train|transfer` — the paper's experiments from the shell.

Thin: every command parses its options, calls `t2igan.sampling` and writes one image (atomically).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import click
import torch

from t2igan.utils.device import DEVICE_HELP, resolve_device
from t2igan.utils.errors import T2IError
from t2igan.utils.images import image_format, make_grid, save_image
from t2igan.utils.seed import SEED_MAX, parse_seeds

# One `sample` call draws at most this many images into at most this many grid pixels (an 8192² grid): every image
# is held as float32 until the grid is written. Ask for more in several calls (--seeds 0-4095, then 4096-8191 …).
MAX_SAMPLE_IMAGES = 4096
MAX_SAMPLE_PIXELS = 2**26
SPLIT_HINT = "split it into several calls, e.g. --seeds 0-4095 then --seeds 4096-8191 (or fewer captions)"


def _seeds(spec: str | None, what: str = "--seeds", max_count: int = MAX_SAMPLE_IMAGES) -> list[int] | None:
    if spec is None:
        return None
    try:
        return parse_seeds(spec, max_count=max_count)
    except ValueError as e:
        raise T2IError(f"{what}: {e}", hint=SPLIT_HINT if "per call" in str(e) else None) from None


def _check_sample_size(n_captions: int, n_seeds: int, image_size: int | None = None, scale: int = 1) -> None:
    """A one-line error before any work when a `sample` call asks for more than the documented bounds."""
    images = n_captions * n_seeds
    if images > MAX_SAMPLE_IMAGES:
        raise T2IError(
            f"{n_captions} caption(s) × {n_seeds} seed(s) = {images:,} images; at most {MAX_SAMPLE_IMAGES:,} per call",
            hint=SPLIT_HINT,
        )
    if image_size is not None and images * (image_size * scale) ** 2 > MAX_SAMPLE_PIXELS:
        side = image_size * scale
        raise T2IError(
            f"{images:,} images of {side}×{side} pixels make a grid of more than {MAX_SAMPLE_PIXELS:,} pixels",
            hint="use fewer seeds or captions per call, or a smaller --scale",
        )


def _pipe(model_dir: str, device: str = "cpu"):
    from t2igan.sampling import T2IPipeline

    return T2IPipeline.from_pretrained(model_dir, device=device)


def _read_captions(path: str) -> list[str]:
    p = Path(path)
    if p.exists() and not p.is_file():  # a FIFO or device would block the read forever
        raise T2IError("not a regular file", path=p, hint="pass a text file with one caption per line")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise T2IError(f"cannot read captions file ({e.__class__.__name__})", path=p) from None
    captions = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    if not captions:
        raise T2IError("captions file has no captions (one per line)", path=p)
    return captions


def _done(path: Path, what: str) -> None:
    click.echo(f"wrote {what}: {path}")


def model_and_captions(args: tuple[str, ...], model: str | None) -> tuple[str, list[str]]:
    """Which argument of ``t2igan sample`` is the model: ``--model`` if given; else the first argument when it is an
    existing folder, a shipped model name or a path (a ``/`` and no spaces: a missing folder is then an error, not a
    caption); else the default shipped model, and every argument is a caption."""
    from t2igan.pretrained import DEFAULT_MODEL, is_shipped_name

    if model is not None:
        return model, list(args)
    if args:
        first = args[0]
        looks_like_path = ("/" in first or os.sep in first) and not any(c.isspace() for c in first)
        if Path(first).is_dir() or is_shipped_name(first) or looks_like_path:
            return first, list(args[1:])
    return DEFAULT_MODEL, list(args)


# ----------------------------------------------------------------------------------------------------------- sample
@click.command("sample")
@click.argument("args", nargs=-1, metavar="[MODEL] [CAPTION]...")
@click.option(
    "--model",
    "model_opt",
    metavar="DIR|NAME",
    default=None,
    help="Run or pretrained folder, or a shipped model name [default: flowers-64, shipped with t2igan].",
)
@click.option(
    "-n",
    "--num",
    "num",
    type=click.IntRange(1, 256),
    default=None,
    help="Images per caption (default 8, or the number of --seeds).",
)
@click.option("--seeds", "seeds_spec", metavar="LIST", help="Seeds, one per image of a caption: 0-15 or 1,5,9.")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=None, help="First seed; images use seed, seed+1, …")
@click.option(
    "--captions",
    "captions_file",
    type=click.Path(dir_okay=False),
    help="A text file with one caption per line (# comments allowed).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default="grid.png", show_default=True, help="Output grid (PNG/JPEG)."
)
@click.option("--scale", type=click.IntRange(1, 8), default=1, show_default=True, help="Upscale each image ×k.")
@click.option(
    "--truncation",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Redraw z components beyond ±T (sharper, less varied).",
)
@click.option("--stages", is_flag=True, help="StackGAN: show every stage (coarse → fine) side by side per seed.")
@click.option("--ca-mean", is_flag=True, help="StackGAN: use the conditioning-augmentation mean ĉ = μ (no CA noise).")
@click.option("--device", default="cpu", show_default=True, help=f"Where G runs: {DEVICE_HELP}.")
def sample(
    args: tuple[str, ...],
    model_opt: str | None,
    num: int | None,
    seeds_spec: str | None,
    seed: int | None,
    captions_file: str | None,
    out: str,
    scale: int,
    truncation: float | None,
    stages: bool,
    ca_mean: bool,
    device: str,
) -> None:
    """Draw images for captions: one grid row per caption, the caption written under its row.

    MODEL is a run or pretrained folder or a shipped model name; without it (or --model) the model shipped with
    t2igan (flowers-64) draws. A first argument that is an existing folder, a shipped name or a path (contains "/",
    no spaces) is the model; everything else is a caption.

    \b
    Examples:
      t2igan sample "this flower has five pink petals and a yellow center" --out pink.png   # the shipped model
      t2igan sample --model runs/demo "a flower with red petals" "a flower with blue petals"
      t2igan sample runs/demo "this flower has pink petals and a yellow center"
      t2igan sample runs/demo "a flower with five blue petals" -n 16 --seeds 0-15 --out blue.png
      t2igan sample runs/demo --captions captions.txt --seed 100 -n 8 --scale 2
      t2igan sample runs/stackgan2 "a bird with a red head" --seeds 0-3 --stages --ca-mean
      t2igan sample runs/sgpp_uncond --seeds 0-7 --stages       # unconditional model: no caption

    A caption and a seed always give the same image (z is drawn per seed). One call draws at most 4096 images
    (captions × seeds) into a grid of at most 2^26 pixels (8192²); split larger requests over several calls.
    """
    model_dir, captions = model_and_captions(args, model_opt)
    caps = list(captions) + (_read_captions(captions_file) if captions_file else [])
    seeds = _seeds(seeds_spec)
    if seeds is not None and seed is not None:
        raise T2IError("use either --seeds or --seed, not both")
    if seeds is None:
        n = num or 8
        seeds = [(seed or 0) + i for i in range(n)]
    elif num is not None and num != len(seeds):
        raise T2IError(f"-n {num} but --seeds lists {len(seeds)} seeds", hint="drop -n or make them agree")
    if seeds[-1] > SEED_MAX:
        raise T2IError(f"--seed {seeds[0]}: seeds {seeds[0]} … {seeds[-1]} pass 2^64 - 1")
    _check_sample_size(max(1, len(caps)), len(seeds))
    image_format(out)  # an unsupported suffix fails now, not after sampling
    pipe = _pipe(model_dir, resolve_device(device))
    if not caps and pipe.text_dim == 0:
        caps = ["(unconditional)"]  # an unconditional model (StackGAN++ uncond) needs no caption
    if not caps:
        raise T2IError("no caption given", hint='e.g. t2igan sample "a flower with red petals" --out red.png')
    _check_sample_size(len(caps), len(seeds), pipe.image_size * (2 if stages else 1), scale)
    if stages:
        from t2igan.sampling.stages import stage_grid

        emb = pipe.encode_prompt(caps) if pipe.text_dim else torch.zeros(len(caps), 0)
        grid = stage_grid(pipe.generator, caps, seeds, text_embeddings=emb, ca_mean=ca_mean, scale=scale)
        _done(save_image(grid, out), "stage grid")
        return
    if ca_mean:
        if not hasattr(pipe.generator, "use_ca_mean"):
            raise T2IError("--ca-mean: this model has no conditioning augmentation (StackGAN only)")
        pipe.generator.use_ca_mean = True
    result = pipe(
        caps, num_images_per_prompt=len(seeds), seeds=seeds, output_type="pt", truncation=truncation, denormalize=False
    )
    grid = make_grid(
        result.images,
        nrow=len(seeds),
        row_captions=caps,
        scale=scale,
        col_labels=[f"seed {s}" for s in seeds] if pipe.image_size * scale >= 48 else None,
    )
    _done(save_image(grid, out), f"{len(caps)}×{len(seeds)} grid")


# ------------------------------------------------------------------------------------------------------ interpolate
@click.command("interpolate")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option(
    "--text",
    "texts",
    multiple=True,
    required=True,
    help="Caption; give two for text interpolation, one or more with --z-interp.",
)
@click.option("--z-interp", is_flag=True, help="Interpolate z between two seeds instead (caption fixed per row).")
@click.option("--steps", type=click.IntRange(2, 64), default=8, show_default=True)
@click.option(
    "--seeds",
    "seeds_spec",
    metavar="LIST",
    help="Text interpolation: one row per seed (default 0). --z-interp: the two endpoints (default 0,1).",
)
@click.option(
    "--seed", type=click.IntRange(0, SEED_MAX), default=None, help="A single seed (text) / the first endpoint."
)
@click.option("--slerp", is_flag=True, help="With --z-interp: spherical instead of linear interpolation.")
@click.option("--out", type=click.Path(dir_okay=False), default="interpolation.png", show_default=True)
@click.option("--scale", type=click.IntRange(1, 8), default=1, show_default=True)
def interpolate(
    model_dir: str,
    texts: tuple[str, ...],
    z_interp: bool,
    steps: int,
    seeds_spec: str | None,
    seed: int | None,
    slerp: bool,
    out: str,
    scale: int,
) -> None:
    """Interpolation strips like the figures of Reed 2016 §5: text or noise moves, left to right.

    \b
    Examples — text (z fixed per row, φ(t) moves from caption A to caption B):
      t2igan interpolate runs/demo --text "a flower with red petals" --text "a flower with blue petals"
      t2igan interpolate runs/demo --text "..." --text "..." --steps 10 --seeds 0-3 --out strip.png
    Noise (caption fixed per row, z moves from seed a to seed b):
      t2igan interpolate runs/demo --z-interp --text "a flower with white petals" --seeds 3,7
    """
    from t2igan.sampling.interpolation import interpolate_text, interpolate_z

    seeds = _seeds(seeds_spec, max_count=MAX_SAMPLE_IMAGES // steps)  # a strip of `steps` images per seed
    image_format(out)
    if seeds is not None and seed is not None:
        raise T2IError("use either --seeds or --seed, not both")
    if z_interp:
        if seeds is None:
            seeds = [seed or 0, (seed or 0) + 1]
        if len(seeds) != 2:
            raise T2IError(
                f"--z-interp needs exactly two seeds (the endpoints), got {len(seeds)}", hint="e.g. --seeds 3,7"
            )
        pipe = _pipe(model_dir)
        result = interpolate_z(
            pipe, list(texts), seed_a=seeds[0], seed_b=seeds[1], steps=steps, mode="slerp" if slerp else "lerp"
        )
    else:
        if len(texts) != 2:
            raise T2IError(
                f"text interpolation needs exactly two --text captions, got {len(texts)}",
                hint="or add --z-interp to interpolate z for each caption",
            )
        pipe = _pipe(model_dir)
        result = interpolate_text(pipe, texts[0], texts[1], steps=steps, seeds=seeds or [seed or 0])
    _done(save_image(result.to_image(scale=scale), out), f"{result.kind} interpolation strip")


# ------------------------------------------------------------------------------------------------------------ style
@click.group("style")
def style() -> None:
    """Style encoder S (Reed 2016 §4.4): train it, then redraw photos with new captions.

    \b
    Examples:
      t2igan style train runs/demo --data runs/demo/data/flowers/.t2igan_cache --steps 1500
      t2igan style transfer runs/demo --image a.png --image b.png "a flower with red petals" "blue petals"
    """


@style.command("train")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False),
    help="Prepared cache (or the dataset folder holding .t2igan_cache): its training captions give φ(t).",
)
@click.option("--steps", type=click.IntRange(1), default=1500, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option(
    "--max-captions",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="How many training captions to encode as the pool of φ(t).",
)
def style_train(
    model_dir: str, data: str, steps: int, batch_size: int, lr: float, seed: int, max_captions: int
) -> None:
    """Train S with ‖z − S(G(z, φ(t)))‖² (G frozen) and save it into MODEL_DIR/style_encoder.

    \b
    Example:
      t2igan style train runs/demo --data runs/demo/data/flowers/.t2igan_cache --steps 1500
    Prints the held-out reconstruction error next to a random-z baseline.
    """
    from t2igan.sampling.style_transfer import save_style_encoder, training_caption_embeddings
    from t2igan.training.style_trainer import StyleTrainConfig, evaluate_style, train_style_encoder
    from t2igan.utils.config import build_config

    pipe = _pipe(model_dir)
    pool = training_caption_embeddings(pipe, data, max_captions=max_captions, seed=seed)
    cfg = build_config(StyleTrainConfig, {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}, "style")
    result = train_style_encoder(pipe.generator, pool, cfg)
    metrics = evaluate_style(pipe.generator, result.encoder, pool)
    metrics.update(steps=steps, seconds=round(result.seconds, 1), final_train_loss=result.losses[-1])
    folder = save_style_encoder(pipe, result.encoder, metrics)
    click.echo(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
    _done(folder, "style encoder")


@style.command("transfer")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("captions", nargs=-1)
@click.option(
    "--image",
    "images",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    help="Query image (repeatable): one grid row each.",
)
@click.option("--out", type=click.Path(dir_okay=False), default="style_transfer.png", show_default=True)
@click.option("--scale", type=click.IntRange(1, 8), default=1, show_default=True)
def style_transfer_cmd(
    model_dir: str, captions: tuple[str, ...], images: tuple[str, ...], out: str, scale: int
) -> None:
    """Redraw each --image with each caption: s ← S(x), x̂ ← G(s, φ(t)) (rows = images, columns = captions).

    \b
    Example:
      t2igan style transfer runs/demo --image photo.png --image other.jpg \\
          "this flower has red petals" "a flower with many white petals and a yellow center"
    """
    from t2igan.sampling.pipeline import load_images
    from t2igan.sampling.style_transfer import style_transfer

    if not captions:
        raise T2IError("no caption given", hint='e.g. ... --image x.png "a flower with red petals"')
    image_format(out)
    pipe = _pipe(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged S is the one-line error itself, not a warning before it
        encoder = pipe.require_style_encoder()
    queries = load_images(images, encoder.config.image_size)
    with torch.inference_mode():
        result = style_transfer(pipe, queries, list(captions))
    _done(save_image(result.to_image(scale=scale), out), f"{len(images)}×{len(captions)} style-transfer grid")
