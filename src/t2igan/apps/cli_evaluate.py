"""``t2igan evaluate`` and ``t2igan evaluator``: measure runs with the protocols of ``t2igan.metrics``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click


@click.group()
def evaluator() -> None:
    """The attribute evaluator network (synthetic flowers): train it once per dataset.

    \b
    Example:
      t2igan evaluator train data/flowers --out data/flowers/.t2igan_cache/evaluator
    """


@evaluator.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: <cache>/evaluator, where `t2igan evaluate` looks).",
)
@click.option("--size", default=64, show_default=True, help="Image size (one of the cache's sizes).")
@click.option("--steps", default=1200, show_default=True, help="Training steps (batch 64).")
@click.option("--width", default=24, show_default=True, help="Base channel width of the CNN.")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out even if it is not an evaluator folder.")
def evaluator_train(
    data: Path, out: Path | None, size: int, steps: int, width: int, seed: int, overwrite: bool
) -> None:
    """Train the attribute evaluator on the real images of DATA and report its held-out accuracy (the ceiling).

    An existing --out that is not an evaluator folder is an error, checked before training (--overwrite replaces it).
    """
    from t2igan.data.cache import open_cache
    from t2igan.metrics.evaluator import check_evaluator_out, train_evaluator

    cache = open_cache(data)
    out = out or Path(cache.root) / "evaluator"
    check_evaluator_out(out, overwrite)
    model = train_evaluator(cache, size=size, steps=steps, seed=seed, width=width)
    model.save_pretrained(out, overwrite=overwrite)
    acc = model.report["heldout_accuracy"]
    for part in ("seen", "unseen"):
        if part in acc:
            per = ", ".join(f"{k} {v:.3f}" for k, v in acc[part]["per_attribute"].items())
            click.echo(f"held-out real {part}: {acc[part]['overall']:.3f} ({per})")
    click.echo(f"class accuracy {acc['class_accuracy']:.3f}; {model.report['seconds']} s; saved {out}")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--metrics",
    "metrics",
    default="all",
    show_default=True,
    help="'all' or a comma list: attr_acc, is_evaluator, fid_evaluator, kid_evaluator, rprec_sje, "
    "nn_evaluator, diversity_evaluator, is_inception, fid_inception, kid_inception (aliases: attr, is, "
    "fid, kid, rprec, nn, diversity).",
)
@click.option("--n", default=2000, show_default=True, help="Generated images per split (test, and train for attr_acc).")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Dataset or prepared cache (default: data.cache of the run's config.yaml).",
)
@click.option(
    "--evaluator",
    type=click.Path(path_type=Path),
    default=None,
    help="Attribute evaluator folder (default: <cache>/evaluator).",
)
@click.option(
    "--sje",
    type=click.Path(path_type=Path),
    default=None,
    help="DS-SJE text encoder folder for rprec_sje (fixed across compared runs).",
)
@click.option(
    "--inception-weights",
    type=click.Path(path_type=Path),
    default=None,
    envvar="T2IGAN_INCEPTION_WEIGHTS",
    help="pt_inception-2015-12-05 weights (see docs/metrics.md).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of prompts and sample seeds.")
@click.option(
    "--stage",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate this stage / branch of a StackGAN or StackGAN++ generator (1 = coarsest; default: the finest).",
)
@click.option("--batch", default=64, show_default=True)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the comparison (Markdown + HTML) goes (default: RUN/eval; for several runs, their parent/comparison).",
)
def evaluate(runs: tuple[Path, ...], **options: Any) -> None:
    """Evaluate one or more run folders; write RUN/metrics.json (+ a line in RUN/metrics.jsonl) and a comparison.

    \b
    Examples:
      t2igan evaluate runs/demo --metrics attr_acc,fid --n 500
      t2igan evaluate runs/gan runs/gan-cls runs/gan-int-cls --metrics all --report runs/compare
      t2igan evaluate runs/sgpp --stage 2 --evaluator EVAL_128 --metrics attr_acc,fid --n 500 --report runs/sgpp/eval_b2
    """
    from t2igan.utils.optional import require

    require("scipy", "matplotlib", "jinja2", extra="eval", what="t2igan evaluate (FID/KID, report charts)")
    from t2igan.metrics.evaluate import evaluate_runs

    result = evaluate_runs(list(runs), **options)  # the options are evaluate_runs' keyword arguments
    click.echo(f"wrote {result.report_md} and {result.report_html}")
    if os.environ.get("T2IGAN_PRINT_REPORT") and result.report_md is not None:
        click.echo(result.report_md.read_text())
