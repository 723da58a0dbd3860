"""``t2igan evaluate`` and ``t2igan evaluator``: measure runs with the protocols of ``t2igan.metrics``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from t2igan.utils.errors import T2IError


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
@click.option("--steps", default=700, show_default=True, help="Training steps (batch 64).")
@click.option("--width", default=24, show_default=True, help="Base channel width of the CNN.")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out even if it is not an evaluator folder.")
def evaluator_train(
    data: Path, out: Path | None, size: int, steps: int, width: int, seed: int, overwrite: bool
) -> None:
    """Train the attribute evaluator on the real images of DATA and report its held-out accuracy (the ceiling).

    An existing --out that is not an evaluator folder is an error, checked before training (--overwrite replaces it).
    """
    from t2igan.metrics.evaluator import check_evaluator_out, train_evaluator
    from t2igan.metrics.sources import open_cache

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


def _default_evaluator(cache_root: Path) -> Path:
    return cache_root / "evaluator"


def default_report_dir(runs: list[Path]) -> Path:
    """RUN/eval for one run; for several, ``comparison`` in their common folder (``runs/a runs/b`` →
    ``runs/comparison``), or in the current folder when they share none."""
    if len(runs) == 1:
        return runs[0] / "eval"
    try:
        common = os.path.commonpath([str(r) for r in runs])
    except ValueError:  # absolute and relative paths mixed
        common = os.path.commonpath([str(r.resolve()) for r in runs])
    if common in ("", os.sep):
        return Path("comparison")
    return Path(common) / "comparison"


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
    "evaluator_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Attribute evaluator folder (default: <cache>/evaluator).",
)
@click.option(
    "--sje",
    "sje_dir",
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
@click.option("--batch", default=64, show_default=True)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the comparison (Markdown + HTML) goes (default: RUN/eval; for several runs, their parent/comparison).",
)
def evaluate(
    runs: tuple[Path, ...],
    metrics: str,
    n: int,
    data: Path | None,
    evaluator_dir: Path | None,
    sje_dir: Path | None,
    inception_weights: Path | None,
    seed: int,
    batch: int,
    report_dir: Path | None,
) -> None:
    """Evaluate one or more run folders; write RUN/metrics.json (+ a line in RUN/metrics.jsonl) and a comparison.

    \b
    Examples:
      t2igan evaluate runs/demo --metrics attr_acc,fid --n 500
      t2igan evaluate runs/gan runs/gan-cls runs/gan-int-cls --metrics all --report runs/compare
    """
    from t2igan.utils.optional import require

    require("scipy", "matplotlib", extra="eval", what="t2igan evaluate (FID/KID, report charts)")
    from t2igan.apps.report import write_report
    from t2igan.metrics.context import EvalContext
    from t2igan.metrics.evaluate import record_results, run_metrics
    from t2igan.metrics.evaluator import load_evaluator
    from t2igan.metrics.sources import discriminator_features, open_cache, pipeline_generate, run_data_path
    from t2igan.utils.images import make_grid, save_image

    if n < 10:
        raise T2IError(f"--n {n} is too small", hint="use at least 10 (IS and R-precision use 10 splits)")
    sje = None
    if sje_dir is not None:
        from t2igan.text import load_sje

        sje = load_sje(sje_dir)
    inception = None
    if inception_weights is not None:
        from t2igan.metrics.inception import load_inception

        inception = load_inception(inception_weights)
    all_results, grids, names = [], [], []
    for run in runs:
        if not run.is_dir():
            raise T2IError("no such run folder", path=run)
        data_path = data or run_data_path(run)
        if data_path is None:
            raise T2IError(
                "cannot tell which data this run used", path=run / "config.yaml", hint="pass --data DATASET_OR_CACHE"
            )
        cache = open_cache(data_path)
        ev_dir = evaluator_dir or _default_evaluator(Path(cache.root))
        ev = load_evaluator(ev_dir) if (ev_dir / "config.json").exists() or evaluator_dir else None
        generate, snapshot = pipeline_generate(run, cache)
        out_dir = run / "eval"
        ctx = EvalContext(
            cache,
            generate,
            n=n,
            seed=seed,
            batch=batch,
            evaluator=ev,
            sje=sje,
            inception=inception,
            discriminator_features=discriminator_features(run),
            out_dir=out_dir,
        )
        click.echo(f"== {run} ({snapshot['name']})")
        results = run_metrics(ctx, metrics, log=lambda s: click.echo("  " + s))
        if not results:
            raise T2IError("no metric could run", hint="train the evaluator first: t2igan evaluator train DATA")
        record_results(run, results, snapshot)
        p = ctx.prompts("test")
        grid = make_grid(ctx.samples("test")[:16], nrow=4, scale=max(1, 96 // ctx.samples("test").shape[1]))
        save_image(grid, out_dir / "samples.png")
        (out_dir / "samples.txt").write_text("\n".join(p.captions[:16]) + "\n")
        all_results.append(results)
        grids.append(out_dir / "samples.png")
        names.append(run.name if run.name not in names else str(run))
    report_dir = report_dir or default_report_dir(runs)
    md, page = write_report(report_dir, names, all_results, grids)
    click.echo(f"wrote {md} and {page}")
    if os.environ.get("T2IGAN_PRINT_REPORT"):
        click.echo(md.read_text())
