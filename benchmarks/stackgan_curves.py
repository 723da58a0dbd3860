"""Training-time evaluation curves of StackGAN runs (``RUN/logs/eval.jsonl``, written by ``train.eval_every``).

Plots FID_eval and attribute accuracy (unseen solid, seen dashed) against training steps for each run, optionally
with horizontal reference lines (e.g. the Stage-I run a Stage-II run is built on), and prints one JSON line per run
with its best evaluation (lowest FID_eval) and its last one.

    python benchmarks/stackgan_curves.py runs/sg2_a runs/sg2_b --label base --label R1 --out docs/img/curves.png \
        --ref "Stage-I=runs/sg1"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def read_curve(run: Path) -> list[dict[str, Any]]:
    """The evaluations of ``run`` in step order (one dict per line of ``logs/eval.jsonl``)."""
    path = run / "logs" / "eval.jsonl"
    if not path.is_file():
        raise SystemExit(f"{run}: no logs/eval.jsonl (train with --set train.eval_every=N)")
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted({r["step"]: r for r in recs}.values(), key=lambda r: r["step"])  # a resumed step counts once


def summary(run: Path) -> dict[str, Any]:
    """Best (lowest FID_eval) and last evaluation of a run, and the worst drift after the best."""
    recs = read_curve(run)
    best = min(recs, key=lambda r: r["fid_evaluator"])
    keep = ("step", "fid_evaluator", "attr_unseen", "attr_seen", "diversity")
    return {
        "run": str(run),
        "evaluations": len(recs),
        "best": {k: best[k] for k in keep},
        "last": {k: recs[-1][k] for k in keep},
        "max_fid_over_best": round(
            max(r["fid_evaluator"] for r in recs if r["step"] >= best["step"]) / best["fid_evaluator"], 3
        ),
    }


def plot(runs: list[Path], labels: list[str], refs: list[tuple[str, Path]], out: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        recs = read_curve(run)
        steps = [r["step"] for r in recs]
        colour = f"C{i % 10}"
        axes[0].plot(steps, [r["fid_evaluator"] for r in recs], "o-", color=colour, label=label, ms=3)
        axes[1].plot(steps, [100 * r["attr_unseen"] for r in recs], "o-", color=colour, label=f"{label} unseen", ms=3)
        axes[1].plot(steps, [100 * r["attr_seen"] for r in recs], "s--", color=colour, label=f"{label} seen", ms=3)
    for j, (name, run) in enumerate(refs):
        best = min(read_curve(run), key=lambda r: r["fid_evaluator"])
        axes[0].axhline(best["fid_evaluator"], color="k", ls=":" if j else "--", lw=1, label=name)
        axes[1].axhline(100 * best["attr_unseen"], color="k", ls=":" if j else "--", lw=1, label=f"{name} unseen")
    axes[0].set_title("FID_eval (validation subset, lower is better)")
    axes[1].set_title("attribute accuracy % (validation subset)")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--label", action="append", default=[], help="one per run (default: the folder names)")
    ap.add_argument("--ref", action="append", default=[], help="NAME=RUN: a horizontal line at RUN's best evaluation")
    ap.add_argument("--out", type=Path, default=None, help="PNG to write (default: only the JSON summaries)")
    ap.add_argument("--title", default="")
    args = ap.parse_args(argv)
    labels = args.label or [r.name for r in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit("give one --label per run")
    refs = [(r.split("=", 1)[0], Path(r.split("=", 1)[1])) for r in args.ref]
    for run in args.runs:
        print(json.dumps(summary(run)))
    if args.out is not None:
        plot(args.runs, labels, refs, args.out, args.title)


if __name__ == "__main__":
    main()
