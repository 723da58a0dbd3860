"""`t2igan data …`: make the synthetic flowers, prepare a cache from any supported layout, look at a dataset."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from t2igan.utils.errors import T2IError


@click.group("data")
def data() -> None:
    """Datasets: synthesise (flowers, shapes), prepare (decode once into a cache) and show.

    \b
    Example (the embedded synthetic flowers, end to end):
      t2igan data synth --out data/flowers --n 8189 --size 64
      t2igan data prepare data/flowers --size 64
      t2igan data show data/flowers --out flowers.png
    """


@data.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option("--n", default=8189, show_default=True, help="Number of images (Oxford-102 has 8,189).")
@click.option("--size", default=64, show_default=True, help="Image side in pixels (16 … 256).")
@click.option("--seed", default=0, show_default=True, help="Fixes classes, split, captions and every image.")
@click.option("--preview/--no-preview", default=True, show_default=True, help="Also write <out>/preview.png.")
@click.option("--overwrite", is_flag=True, help="Replace --out even if it is not an earlier synthetic-flowers folder.")
def synth(out: Path, n: int, size: int, seed: int, preview: bool, overwrite: bool) -> None:
    """Write the synthetic-flowers dataset in Reed's Oxford-102 layout.

    \b
    Writes images/, text_c10/<class>/<image>.txt (10 captions each), allclasses.txt, trainvalclasses.txt (82),
    testclasses.txt (20), attributes.json. Same seed → same bytes. An existing --out is replaced only if it is an
    earlier synthetic-flowers folder or empty (else an error; --overwrite replaces it).

    \b
    Example:
      t2igan data synth --out data/flowers --n 8189 --size 64 --seed 0
    """
    from t2igan.data.synthetic import preview_grid, write_synthetic_dataset

    if n < 1 or not 8 <= size <= 1024:
        raise T2IError(f"bad --n {n} / --size {size}", hint="use --n ≥ 1 and 8 ≤ --size ≤ 1024")
    path = write_synthetic_dataset(out, n=n, size=size, seed=seed, progress=True, overwrite=overwrite)
    if preview:
        preview_grid(path / "preview.png", seed=seed, size=size, n=min(32, n))
    click.echo(f"wrote {n} synthetic flowers ({size}px) to {path}")


@data.command("shapes")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option("--n", default=300, show_default=True, type=click.IntRange(1, 100_000), help="Number of images.")
@click.option("--size", default=64, show_default=True, type=click.IntRange(16, 512), help="Image side in pixels.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Fixes every image and caption.")
@click.option("--overwrite", is_flag=True, help="Replace --out even if it is not an earlier shapes folder.")
def shapes(out: Path, n: int, size: int, seed: int, overwrite: bool) -> None:
    """Write a small captioned dataset of coloured circles, squares and triangles in imagefolder layout.

    \b
    Writes images/shape_XXXXX.png and metadata.jsonl (file_name, text: 4 captions, label: <colour>-<shape>, 18
    classes): an example of your own data for `t2igan train --data`.

    \b
    Example:
      t2igan data shapes --out data/shapes --n 300
      t2igan train --data data/shapes --out runs/shapes
    """
    from t2igan.data.shapes import write_shapes_dataset

    path = write_shapes_dataset(out, n=n, size=size, seed=seed, overwrite=overwrite)
    click.echo(f"wrote {n} shapes ({size}px, imagefolder layout) to {path}")


@data.command("prepare")
@click.argument("src", type=click.Path(path_type=Path))
@click.option(
    "--size",
    "sizes",
    multiple=True,
    type=int,
    default=(64,),
    show_default=True,
    help="Resolution to store; repeat for several (e.g. --size 64 --size 256).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder [default: SRC/.t2igan_cache].",
)
@click.option("--skip-bad", is_flag=True, help="Warn about and leave out unreadable items instead of stopping.")
@click.option("--workers", type=int, default=None, help="Decoding threads [default: min(4, CPUs)].")
@click.option("--overwrite", is_flag=True, help="Replace --out even if it is not a cache (never the dataset itself).")
def prepare(
    src: Path, sizes: tuple[int, ...], out: Path | None, skip_bad: bool, workers: int | None, overwrite: bool
) -> None:
    """Decode, crop and resize a dataset once into a memory-mapped cache (no work if inputs are unchanged).

    SRC may be in Reed layout (Oxford-102, CUB-200-2011 with bounding boxes, synthetic flowers), StackGAN layout
    (filenames.pickle + char-CNN-RNN-embeddings.pickle, imported as embeddings key "precomputed"), Hugging Face
    imagefolder layout (metadata.jsonl / metadata.csv with file_name, text) or COCO captions
    (annotations/captions_*.json + train2014/, val2014/; one class, val = test). An existing --out that is not a cache
    is an error (--overwrite replaces it); --out can never be SRC or a folder holding it.

    \b
    Example:
      t2igan data prepare data/flowers --size 64 --size 128 --skip-bad
    """
    from t2igan.data.cache import PreparedCache, prepare_cache

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = prepare_cache(src, sizes=sizes, out=out, skip_bad=skip_bad, workers=workers, overwrite=overwrite)
    bad = [w for w in caught if str(w.message).startswith("skipping: ")]
    for w in bad:
        click.echo(f"warning: {str(w.message)[len('skipping: ') :]}", err=True)
    cache = PreparedCache.open(path)
    click.echo(
        f"cache {path}: {cache.n} images, {cache.n_captions} captions, sizes {cache.sizes}, "
        f"{len(cache.train_indices())} train / {len(cache.test_indices())} test"
        + (f"; skipped {len(bad)} bad item(s)" if bad else "")
    )


@data.command("show")
@click.argument("src", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG to write [default: SRC/show.png for a dataset, ./show.png for a cache].",
)
@click.option("--n", default=16, show_default=True, help="Number of images.")
@click.option("--nrow", default=4, show_default=True, help="Images per row.")
@click.option("--size", default=None, type=int, help="Cache resolution to show [default: largest].")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Which images are picked.")
def show(src: Path, out: Path | None, n: int, nrow: int, size: int | None, split: str, seed: int) -> None:
    """Write a PNG grid of images with one of their captions under each row.

    SRC is a prepared cache or a dataset folder (prepared on the fly into its default cache at 64 px).

    \b
    Example:
      t2igan data show data/flowers --out flowers.png --n 16 --nrow 4
    """
    from t2igan.data.show import show_grid

    path = show_grid(src, out=out, n=n, nrow=nrow, size=size, split=split, seed=seed)
    click.echo(f"wrote {path}")
