"""Run metrics: ``evaluate_generator`` (any ``generate(captions, seeds)``) and ``evaluate_runs`` (run folders, with
their comparison report — what ``t2igan evaluate`` does). A run's results go to ``<run>/metrics.json`` (latest value
of every metric) and one JSON line per evaluation is appended to ``<run>/metrics.jsonl`` naming the snapshot that
produced it (StyleGAN2-ADA's habit).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan import __version__
from t2igan.data.cache import PreparedCache
from t2igan.metrics.context import EvalContext, GenerateFn
from t2igan.metrics.registry import REGISTRY, resolve
from t2igan.utils.errors import T2IError
from t2igan.utils.images import make_grid, save_image
from t2igan.utils.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from t2igan.sampling import T2IPipeline


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def available_needs(ctx: EvalContext) -> set[str]:
    return {k for k, v in (("evaluator", ctx.evaluator), ("sje", ctx.sje), ("inception", ctx.inception)) if v}


logger = logging.getLogger(__name__)


def run_metrics(ctx: EvalContext, metrics: str | list[str] = "all") -> dict[str, dict[str, Any]]:
    """Compute ``metrics`` (``"all"``, ``"attr_acc,fid"`` or a list) on ``ctx`` → ``{protocol name: result}``."""
    names = resolve(metrics if isinstance(metrics, str) else ",".join(metrics), available_needs(ctx))
    have = available_needs(ctx)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = REGISTRY[name]
        missing = spec.needs - have
        if missing:
            opt = {
                "evaluator": "--evaluator DIR (train one: t2igan evaluator train DATA)",
                "sje": "--sje DIR",
                "inception": "--inception-weights FILE",
            }
            raise T2IError(
                f"metric {name} needs {', '.join(sorted(missing))}",
                hint="pass " + ", ".join(opt[m] for m in sorted(missing)),
            )
        t0 = time.time()
        res = _jsonable(spec.fn(ctx))
        res["seconds"] = round(time.time() - t0, 2)
        results[name] = res
        logger.debug("%s: %s s", name, res["seconds"])
    return results


def evaluate_generator(
    cache: PreparedCache,
    generate: GenerateFn,
    metrics: str | list[str] = "attr_acc",
    *,
    evaluator: Any,
    n: int = 500,
    seed: int = 0,
    progress: bool = False,
    **ctx_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """One call for scripts and the demo: e.g. ``evaluate_generator(cache, gen, "attr_acc", evaluator=ev)``."""
    ctx = EvalContext(cache, generate, n=n, seed=seed, evaluator=evaluator, progress=progress, **ctx_kwargs)
    return run_metrics(ctx, metrics)


def record_results(run_dir: str | Path, results: dict[str, dict[str, Any]], snapshot: dict[str, Any]) -> None:
    """Merge into ``metrics.json`` (``metrics_stage<N>.json`` for one stage of a multi-stage generator, when the
    snapshot names a ``stage``) and append one JSON line to ``metrics.jsonl`` (both atomic)."""
    run_dir = Path(run_dir)
    stage = snapshot.get("stage")
    path = run_dir / ("metrics.json" if stage is None else f"metrics_stage{stage}.json")
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update({k: {**v, "snapshot": snapshot.get("name")} for k, v in results.items()})
    atomic_write_json(path, merged)
    line = json.dumps(
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "snapshot": snapshot,
            "t2igan": __version__,
            "results": results,
        },
        sort_keys=True,
    )
    log = run_dir / "metrics.jsonl"
    old = log.read_text() if log.exists() else ""
    atomic_write_text(log, old + line + "\n")


def attribute_accuracy_for(
    model: str | Path | T2IPipeline | GenerateFn,
    cache: PreparedCache,
    evaluator_dir: str | Path | None = None,
    n: int = 500,
    seed: int = 0,
    evaluator_steps: int = 700,
    progress: bool = False,
) -> dict[str, Any]:
    """Attribute accuracy of ``model`` (run folder, pretrained folder, ``T2IPipeline`` or ``generate`` callable).

    Reuses the evaluator in ``evaluator_dir`` (default ``<cache>/evaluator``) or trains one there first. Returns
    ``{"seen", "unseen", "chance", "ceiling": {"seen", "unseen", "all"}, "per_attribute": {"seen", "unseen"},
    "protocol", "result"}`` (``result`` = the full ``attr_acc`` record).
    """
    from t2igan.metrics.evaluator import get_or_train_evaluator
    from t2igan.metrics.sources import pipeline_generate
    from t2igan.sampling import T2IPipeline

    size = 64 if 64 in cache.sizes else max(cache.sizes)
    ev = get_or_train_evaluator(cache, evaluator_dir, size=size, steps=evaluator_steps, seed=seed, progress=progress)
    generate = pipeline_generate(model, cache)[0] if isinstance(model, (str, Path, T2IPipeline)) else model
    res = evaluate_generator(cache, generate, "attr_acc", evaluator=ev, n=n, seed=seed, progress=progress)["attr_acc"]
    return {
        "seen": res["seen"]["overall"],
        "unseen": res["unseen"]["overall"],
        "chance": res["chance"],
        "ceiling": res["ceiling_real_heldout"],
        "per_attribute": {"seen": res["seen"]["per_attribute"], "unseen": res["unseen"]["per_attribute"]},
        "protocol": res["protocol"],
        "result": res,
    }


@dataclass
class RunEvaluation:
    """One evaluated run: its results (``{protocol name: result}``), the snapshot that made the images, and the
    grid of its first 16 test samples."""

    run: Path
    label: str  # its name in the comparison
    snapshot: dict[str, Any]
    results: dict[str, dict[str, Any]]
    samples: Path


@dataclass
class Evaluation:
    """What ``evaluate_runs`` returns: every run's evaluation and the comparison report (Markdown, HTML)."""

    runs: list[RunEvaluation] = field(default_factory=list)
    report_md: Path | None = None
    report_html: Path | None = None


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


def evaluate_runs(
    runs: list[str | Path],
    metrics: str | list[str] = "all",
    n: int = 2000,
    *,
    data: str | Path | None = None,
    evaluator: str | Path | None = None,
    sje: str | Path | None = None,
    inception_weights: str | Path | None = None,
    seed: int = 0,
    stage: int | None = None,
    batch: int = 64,
    report: str | Path | None = None,
) -> Evaluation:
    """Evaluate run folders with the same prompts and seeds, record each run's results, write the comparison.

    ``data``: the dataset or cache (default: ``data.cache`` of each run's config.yaml); ``evaluator``: the attribute
    evaluator folder (default ``<cache>/evaluator`` when it exists); ``sje``: a DS-SJE text encoder folder
    (``rprec_sje``, fixed across compared runs); ``inception_weights``: ``pt_inception-2015-12-05`` weights;
    ``stage``: evaluate that stage / branch (1 = coarsest) of a StackGAN / StackGAN++ generator instead of the finest;
    ``report``: the comparison's folder (default ``default_report_dir(runs)``). Per run, this writes
    ``metrics.json`` (``metrics_stage<N>.json`` with ``stage``), a line of ``metrics.jsonl`` and
    ``eval/samples.png`` + ``eval/samples.txt`` (``eval_stage<N>/`` with ``stage``).
    """
    from t2igan.data.cache import open_cache
    from t2igan.metrics.evaluator import load_evaluator
    from t2igan.metrics.report import write_report
    from t2igan.metrics.sources import discriminator_features, pipeline_generate, run_data_path

    if n < 10:
        raise T2IError(f"n = {n} is too small", hint="use at least 10 (IS and R-precision use 10 splits)")
    run_dirs = [Path(r) for r in runs]
    sje_model = None
    if sje is not None:
        from t2igan.text import load_sje

        sje_model = load_sje(sje)
    inception = None
    if inception_weights is not None:
        from t2igan.metrics.inception import load_inception

        inception = load_inception(inception_weights)
    same: dict[str, Any] = {"n": n, "seed": seed, "batch": batch, "sje": sje_model, "inception": inception}  # every run
    out = Evaluation()
    for run in run_dirs:
        if not run.is_dir():
            raise T2IError("no such run folder", path=run)
        data_path = data or run_data_path(run)
        if data_path is None:
            raise T2IError(
                "cannot tell which data this run used", path=run / "config.yaml", hint="pass --data DATASET_OR_CACHE"
            )
        cache = open_cache(data_path)
        ev_dir = Path(evaluator) if evaluator is not None else Path(cache.root) / "evaluator"
        ev = load_evaluator(ev_dir) if (ev_dir / "config.json").exists() or evaluator is not None else None
        generate, snapshot = pipeline_generate(run, cache, stage=stage)
        features = discriminator_features(run)
        out_dir = run / "eval" if stage is None else run / f"eval_stage{stage}"
        ctx = EvalContext(cache, generate, evaluator=ev, discriminator_features=features, out_dir=out_dir, **same)
        logger.info("== %s (%s)", run, snapshot["name"])
        results = run_metrics(ctx, metrics)
        for name, res in results.items():
            std = f" ± {res['std']:.4g}" if "std" in res else ""
            logger.info("  %s: %.4g%s  (%s)", name, res["value"], std, res["protocol"])
        if not results:
            raise T2IError("no metric could run", hint="train the evaluator first: t2igan evaluator train DATA")
        record_results(run, results, snapshot)
        out.runs.append(
            RunEvaluation(
                run=run,
                label=run.name if run.name not in [r.label for r in out.runs] else str(run),
                snapshot=snapshot,
                results=results,
                samples=_sample_grid(ctx, out_dir),
            )
        )
    out.report_md, out.report_html = write_report(
        report if report is not None else default_report_dir(run_dirs),
        [r.label for r in out.runs],
        [r.results for r in out.runs],
        [r.samples for r in out.runs],
    )
    return out


def _sample_grid(ctx: EvalContext, out_dir: Path) -> Path:
    """The first 16 test samples as a 4×4 grid (``samples.png``) with their captions (``samples.txt``)."""
    images = ctx.samples("test")
    grid = make_grid(images[:16], nrow=4, scale=max(1, 96 // images.shape[1]))
    path = out_dir / "samples.png"
    save_image(grid, path)
    atomic_write_text(out_dir / "samples.txt", "\n".join(ctx.prompts("test").captions[:16]) + "\n")
    return path
