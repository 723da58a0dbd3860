"""Seconds per training step of the StackGAN CPU presets at 1 and 2 threads, and the training time they imply.

Prints ONE JSON line. For each preset (default: ``stackgan_stage1_cpu``, ``stackgan_stage2_cpu``,
``stackganpp_cpu256``) and thread count it builds the preset's system exactly as ``t2igan train`` would (its loss,
D normalisation, mode seeking, EMA; 256-d caption embeddings; Stage-II on a randomly initialised Stage-I), times
``--steps`` training steps on a random batch of the preset's size after ``--warmup`` steps, and reports the median
seconds per step and ``train_minutes`` = the preset's ``train.steps`` × that median. Data loading, checkpoints and
the evaluation hook are not in it (they run between steps; ``t2igan train`` logs their time separately).

    python benchmarks/preset_time.py                                # all three presets, 1 and 2 threads
    python benchmarks/preset_time.py --presets stackgan_stage1_cpu --threads 2 --steps 20
    python benchmarks/preset_time.py --presets stackgan_stage2_cpu --threads 2 --set model.r_num=4   # a variant

Run it on a quiet machine: the JSON carries the 1-minute load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from t2igan.training.config import TrainConfig, load_config
from t2igan.training.export import export_pretrained
from t2igan.training.system import GanSystem, get_system_class

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stackgan_step import timed_steps

TEXT_DIM = 256  # the char-CNN-RNN CPU preset's embedding size (what the presets train on)
PRESETS = ("stackgan_stage1_cpu", "stackgan_stage2_cpu", "stackganpp_cpu256")


def build(preset: str, folder: Path, sets: list[str] | None = None) -> tuple[GanSystem, TrainConfig]:
    """The preset's system with ``sets`` (``KEY=VALUE`` overrides); a Stage-II preset gets a randomly initialised
    Stage-I of the matching preset."""
    sets = list(sets or [])
    cfg = load_config(preset, sets)
    if cfg.model.name == "stackgan" and cfg.model.params.get("stage") == 2:
        s1_cfg = load_config("stackgan_stage1_cpu")
        stage1 = get_system_class("stackgan")(s1_cfg, TEXT_DIM, torch.device("cpu")).generator_for_export()
        export_pretrained(stage1, folder / "pretrained", model_name="stackgan")
        cfg = load_config(preset, [*sets, f"model.stage1={folder}"])
    return get_system_class(cfg.model.name)(cfg, TEXT_DIM, torch.device("cpu")), cfg


def random_batch(cfg: TrainConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random real images at every size from 64 px to ``data.size`` (what the StackGAN systems read) and texts."""
    g = torch.Generator().manual_seed(seed)
    b = cfg.train.batch_size
    sizes = [s for s in (64, 128, 256) if s <= cfg.data.size]
    out = {f"image_{s}": torch.rand(b, 3, s, s, generator=g) * 2 - 1 for s in sizes}
    out["text_emb"] = torch.randn(b, TEXT_DIM, generator=g)
    out["wrong_emb"] = torch.randn(b, TEXT_DIM, generator=g)
    return out


def time_preset(preset: str, threads: int, steps: int, warmup: int, sets: list[str] | None = None) -> dict[str, Any]:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="preset_time_") as tmp:
        system, cfg = build(preset, Path(tmp), sets)
        times = timed_steps(system, random_batch(cfg), steps, warmup, f"{preset} threads={threads}")
    med = statistics.median(times)
    return {
        "batch": cfg.train.batch_size,
        "preset_steps": cfg.train.steps,
        "s_per_step_median": round(med, 4),
        "s_per_step_all": [round(t, 4) for t in times],
        "images_per_s": round(cfg.train.batch_size / med, 1),
        "train_minutes": round(cfg.train.steps * med / 60.0, 1) if cfg.train.steps else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default=",".join(PRESETS), help="comma list of preset names")
    ap.add_argument("--threads", default="1,2", help="comma list of torch thread counts")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per preset and thread count (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="override, repeatable")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    results: dict[str, Any] = {}
    for preset in args.presets.split(","):
        threads = [int(t) for t in args.threads.split(",")]
        results[preset] = {f"threads_{t}": time_preset(preset, t, args.steps, args.warmup, args.sets) for t in threads}
    out = {
        "benchmark": "preset_time",
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "loadavg_1min_start": round(load_start, 2),
        "loadavg_1min_end": round(os.getloadavg()[0], 2),
        "text_dim": TEXT_DIM,
        "sets": args.sets,
        "results": results,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
