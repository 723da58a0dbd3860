"""Run metrics on one model: ``evaluate_generator`` (any ``generate(captions, seeds)``) and ``evaluate_run``
(a run folder). Results go to ``<run>/metrics.json`` (latest value of every metric) and one JSON line per call is
appended to ``<run>/metrics.jsonl`` naming the snapshot that produced it (StyleGAN2-ADA's habit).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from t2igan import __version__
from t2igan.metrics.context import EvalContext, GenerateFn
from t2igan.metrics.registry import REGISTRY, resolve
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json, atomic_write_text


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


def run_metrics(
    ctx: EvalContext, metrics: str | list[str] = "all", log: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
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
        if log:
            std = f" ± {res['std']:.4g}" if "std" in res else ""
            log(f"{name}: {res['value']:.4g}{std}  ({res['protocol']})")
    return results


def evaluate_generator(
    cache: Any,
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
    """Merge into ``metrics.json`` and append one JSON line to ``metrics.jsonl`` (both atomic)."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
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
    model: Any,
    cache: Any,
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

    size = 64 if 64 in cache.sizes else max(cache.sizes)
    ev = get_or_train_evaluator(cache, evaluator_dir, size=size, steps=evaluator_steps, seed=seed, progress=progress)
    is_fn = callable(model) and not hasattr(model, "generator")
    generate = model if is_fn else pipeline_generate(model, cache)[0]
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
