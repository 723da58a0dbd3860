"""Comparison report across evaluated runs: ``comparison.md`` and ``comparison.html`` (table, one bar chart per
metric, each run's sample grid; the page is ``metrics/templates/comparison.html``). Every number is shown with its
protocol name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from t2igan.utils.io import atomic_path, atomic_write_text
from t2igan.utils.templates import render

LOWER_IS_BETTER = ("fid", "kid", "nn_")


def _fmt(res: dict[str, Any] | None) -> str:
    if not res or "value" not in res:
        return "–"
    s = f"{res['value']:.4g}"
    return s + (f" ± {res['std']:.2g}" if "std" in res else "")


def _direction(name: str) -> str:
    return "↓" if name.startswith(LOWER_IS_BETTER[:2]) else ("≈1" if name.startswith("nn_") else "↑")


def _bar_chart(name: str, runs: list[str], results: list[dict[str, Any]], out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = [r.get(name, {}).get("value") for r in results]
    if all(v is None for v in vals):
        return None
    errs = [r.get(name, {}).get("std", 0.0) for r in results]
    fig, ax = plt.subplots(figsize=(max(3.0, 1.1 * len(runs)), 2.6), dpi=100)
    ax.bar(range(len(runs)), [v or 0.0 for v in vals], yerr=errs, color="#4878a8", capsize=3)
    ax.set_xticks(range(len(runs)), runs, rotation=20, ha="right", fontsize=8)
    ax.set_title(f"{name} {_direction(name)}", fontsize=9)
    fig.tight_layout()
    path = out / f"bar_{name}.png"
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_report(
    out: str | Path, runs: list[str], results: list[dict[str, dict[str, Any]]], grids: list[Path | None] | None = None
) -> tuple[Path, Path]:
    """Write the Markdown and HTML comparison of ``runs`` (``results[i]`` = run i's ``{metric: result}``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [m for m in dict.fromkeys(k for r in results for k in r)]
    protocols = {m: next(r[m]["protocol"] for r in results if m in r) for m in names}
    head = "| run | " + " | ".join(f"{m} {_direction(m)}" for m in names) + " |"
    lines = ["# Model comparison", "", head, "|" + "---|" * (len(names) + 1)]
    lines += [
        f"| {run} | " + " | ".join(_fmt(r.get(m)) for m in names) + " |" for run, r in zip(runs, results, strict=True)
    ]
    lines += ["", "Protocols:", *[f"- `{m}`: `{protocols[m]}`" for m in names]]
    attr = [r.get("attr_acc") for r in results]
    if any(attr):
        lines += [
            "",
            "| run | attr acc seen | attr acc unseen | evaluator ceiling (real, held-out) | chance |",
            "|---|---|---|---|---|",
        ]
        for run, a in zip(runs, attr, strict=True):
            if a:
                ceil = a.get("ceiling_real_heldout", {}).get("all")
                lines.append(
                    f"| {run} | {a['seen']['overall']:.3f} | {a['unseen']['overall']:.3f} | "
                    f"{'–' if ceil is None else f'{ceil:.3f}'} | {a['chance']:.3f} |"
                )
    md = out / "comparison.md"
    atomic_write_text(md, "\n".join(lines) + "\n")

    charts = [c.name for c in (_bar_chart(m, runs, results, out) for m in names) if c]
    rows = []
    for i, (run, r, grid) in enumerate(zip(runs, results, grids or [None] * len(runs), strict=True)):
        copied = None
        if grid and Path(grid).exists():
            copied = f"samples_{i}.png"
            shutil.copyfile(grid, out / copied)
        rows.append({"name": run, "cells": [_fmt(r.get(m)) for m in names], "grid": copied})
    metrics = [{"name": m, "direction": _direction(m), "protocol": protocols[m]} for m in names]
    page_path = out / "comparison.html"
    atomic_write_text(page_path, render("t2igan.metrics", "comparison.html", metrics=metrics, runs=rows, charts=charts))
    return md, page_path
