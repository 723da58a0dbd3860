"""StackGAN / StackGAN++ training-step throughput at the paper's widths, and Stage-II vs Stage-I sharpness.

Prints ONE JSON line. For each model — Stage-I (batch 64, 64 px), Stage-II (batch 8, 64 → 256), StackGAN++ (3
branches 64/128/256, batch 24) at GF_DIM 128 / DF_DIM 64 / R_NUM 4 (StackGAN++: GF_DIM = DF_DIM = 64, R_NUM 2) on
random inputs — it reports FLOPs per step (`torch.utils.flop_counter`, forward + backward of one D and one G
update), the median seconds per step, images/s and the achieved FLOP/s, for fp32 and for bf16 autocast +
channels_last. Steps are the library's lean steps (`StackGanSystem` / `StackGanPPSystem.train_step`, paper presets,
no EMA): fake detached for D, D frozen in the G update, real features reused for mismatched pairs, fused
nearest-upsample + conv3×3.

Reference points (official PyTorch code on this machine kind, from issue 5): Stage-I 11.1 img/s, Stage-II 0.86,
StackGAN++ 0.60; targets 28, 1.7, 1.5. Timings on a shared machine swing with load: the JSON carries the load
average at start and end — compare ratios measured in one run.

    python benchmarks/stackgan_step.py                         # all three models, fp32 and bf16+channels_last
    python benchmarks/stackgan_step.py --models stage1 --steps 5
    python benchmarks/stackgan_step.py --sharpness runs/sg2    # only the sharpness figure of a Stage-II run
    python benchmarks/stackgan_step.py --sharpness runs/sg2 --sharpness-n 500   # on 500 test captions (the bar's n)

Sharpness: on the same captions and z (CA off), the high-frequency energy — the share of spectral power above a
quarter of the sampling frequency, i.e. above what a 2×-smaller image can hold — of Stage-II outputs vs Stage-I
outputs bilinearly upsampled to the Stage-II size; and every stage / branch at its own size against real images of
that size (``stage_hf_shares``, ``real_hf_shares``). Periodic artefacts — a dot grid or stripes at the same place
in every image, which the share does not rank — by the periodic peak ratio (``t2igan.losses.spectral``): the largest
ratio of the batch-mean power at one frequency to the median power on its ring (≈ 2 for the real renders).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from t2igan.losses.spectral import periodic_peak_ratio
from t2igan.sampling.stages import eval_caption_embeddings, eval_real_images, load_stage_generator
from t2igan.training.config import load_config
from t2igan.training.export import export_pretrained
from t2igan.training.system import GanSystem, get_system_class

PAPER = {
    "stage1": {"batch": 64, "official_img_s": 11.1, "official_gflop": 659, "target_img_s": 28.0},
    "stage2": {"batch": 8, "official_img_s": 0.86, "official_gflop": 1030, "target_img_s": 1.7},
    "stackganpp": {"batch": 24, "official_img_s": 0.60, "official_gflop": 3423, "target_img_s": 1.5},
}
VARIANTS = {
    "fp32": ["train.precision=fp32", "train.channels_last=false"],
    "bf16_channels_last": ["train.precision=bf16", "train.channels_last=true"],
}
PRESETS = {"stage1": "stackgan_stage1_cub", "stage2": "stackgan_stage2_cub", "stackganpp": "stackganpp_cub"}


def build(model: str, variant: list[str]) -> GanSystem:
    """The paper-setting system of ``model`` (Stage-II on a randomly initialised Stage-I, exported to a temp dir)."""
    sets = [*variant, "optim.ema=0"]
    if model == "stage2":
        with tempfile.TemporaryDirectory(prefix="stackgan_bench_") as folder:
            stage1 = build("stage1", variant).generator_for_export()
            export_pretrained(stage1, Path(folder) / "pretrained", model_name="stackgan")
            cfg = load_config(PRESETS[model], [*sets, f"model.stage1={folder}"])
            return get_system_class(cfg.model.name)(cfg, 1024, torch.device("cpu"))
    cfg = load_config(PRESETS[model], sets)
    return get_system_class(cfg.model.name)(cfg, 1024, torch.device("cpu"))


def random_batch(model: str, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sizes = {"stage1": [64], "stage2": [256], "stackganpp": [64, 128, 256]}[model]
    out = {f"image_{s}": torch.rand(batch, 3, s, s, generator=g) * 2 - 1 for s in sizes}
    out["text_emb"] = torch.randn(batch, 1024, generator=g)
    out["wrong_emb"] = torch.randn(batch, 1024, generator=g)
    return out


def count_flops(model: str) -> float:
    system = build(model, VARIANTS["fp32"])
    batch = random_batch(model, PAPER[model]["batch"])
    with FlopCounterMode(display=False) as fc:
        system.train_step(batch, 0)
    return fc.get_total_flops()


def log(msg: str) -> None:
    """Progress on stderr (stdout carries only the JSON line)."""
    sys.stderr.write(f"[stackgan_step {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def timed_steps(
    system: GanSystem, batch: dict[str, torch.Tensor], n_steps: int, warmup: int, label: str
) -> list[float]:
    """Seconds of each of ``n_steps`` training steps on ``batch`` after ``warmup`` untimed ones (logged to stderr)."""
    times = []
    for i in range(warmup + n_steps):
        t0 = time.perf_counter()
        system.train_step(batch, i)
        dt = time.perf_counter() - t0
        log(f"{label} step {i} {'(warm-up) ' if i < warmup else ''}{dt:.3f} s")
        if i >= warmup:
            times.append(dt)
    return times


def time_steps(model: str, variant: str, n_steps: int, warmup: int) -> list[float]:
    system = build(model, VARIANTS[variant])
    return timed_steps(system, random_batch(model, PAPER[model]["batch"]), n_steps, warmup, f"{model} {variant}")


def throughput(models: list[str], n_steps: int, warmup: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for model in models:
        ref = PAPER[model]
        flops = count_flops(model)
        log(f"{model}: {flops / 1e9:.1f} GFLOP/step")
        row: dict[str, Any] = {
            "batch": ref["batch"],
            "gflop_per_step": round(flops / 1e9, 1),
            "official_gflop_per_step": ref["official_gflop"],
            "official_images_per_s": ref["official_img_s"],
            "target_images_per_s": ref["target_img_s"],
        }
        for variant in VARIANTS:
            ts = time_steps(model, variant, n_steps, warmup)
            med = statistics.median(ts)
            row[variant] = {
                "s_per_step_median": round(med, 3),
                "s_per_step_all": [round(t, 3) for t in ts],
                "images_per_s": round(ref["batch"] / med, 2),
                "achieved_gflop_s": round(flops / med / 1e9, 1),
                "speedup_vs_official": round(ref["batch"] / med / ref["official_img_s"], 2),
            }
        best = max(row[v]["images_per_s"] for v in VARIANTS)
        row["best_images_per_s"] = best
        row["meets_target"] = best >= ref["target_img_s"]
        results[model] = row
    return results


def high_frequency_share(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Per image: share of (mean-removed, grey) spectral power at radial frequency > ``cutoff`` cycles/pixel."""
    grey = images.float().mean(dim=1)
    grey = grey - grey.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(grey).abs().pow(2)
    h, w = grey.shape[-2:]
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.fftfreq(w)[None, :]
    high = (fy.pow(2) + fx.pow(2)).sqrt() > cutoff
    return (power * high).sum(dim=(1, 2)) / power.sum(dim=(1, 2)).clamp_min(1e-12)


def sharpness(run_dir: Path, n: int = 64, seed: int = 0) -> dict[str, Any]:
    """Stage-II vs Stage-I-upsampled high-frequency share on the same captions and z (CA off: ĉ = μ)."""
    gen, emb, captions = load_stage_generator(run_dir), *eval_caption_embeddings(run_dir, n, seed)
    gen.use_ca_mean = True
    z = torch.randn(emb.shape[0], gen.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = gen(z, emb)
    if len(images) < 2:
        raise SystemExit(f"{run_dir}: not a multi-stage generator")
    coarse, fine = images[0], images[-1]
    up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
    hf_fine, hf_up = high_frequency_share(fine), high_frequency_share(up)
    per_stage, real_per_size, peaks, real_peaks = [], [], [], []
    for img in images:  # every stage / branch at its own size, against real images at that size
        per_stage.append(round(float(high_frequency_share(img).mean()), 5))
        peaks.append(round(periodic_peak_ratio(img), 2))
        try:
            real = eval_real_images(run_dir, img.shape[-1], n, seed)
            real_per_size.append(round(float(high_frequency_share(real).mean()), 5))
            real_peaks.append(round(periodic_peak_ratio(real), 2))
        except Exception:  # the cache may lack the size; the figure stays useful without it
            real_per_size.append(float("nan"))
            real_peaks.append(float("nan"))
    hf_real = real_per_size[-1]
    return {
        "run": str(run_dir),
        "n_captions": int(emb.shape[0]),
        "protocol": "grey FFT power share above 0.25 cycles/px; CA off; same captions and z; bilinear upsampling",
        "stage2_hf_share": round(float(hf_fine.mean()), 5),
        "stage1_upsampled_hf_share": round(float(hf_up.mean()), 5),
        "real_images_hf_share": round(hf_real, 5),
        "ratio": round(float(hf_fine.mean() / hf_up.mean().clamp_min(1e-12)), 2),
        "stage2_sharper_fraction": round(float((hf_fine > hf_up).float().mean()), 3),
        "sizes": [int(x.shape[-1]) for x in images],
        "stage_hf_shares": per_stage,
        "real_hf_shares": real_per_size,
        "stage2_peak_ratio": peaks[-1],
        "stage1_upsampled_peak_ratio": round(periodic_peak_ratio(up), 2),
        "real_images_peak_ratio": real_peaks[-1],
        "stage_peak_ratios": peaks,
        "real_peak_ratios": real_peaks,
        "captions_example": captions[:2],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="stage1,stage2,stackganpp", help="comma list of stage1,stage2,stackganpp")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--sharpness", type=Path, default=None, help="Stage-II run/pretrained folder: sharpness only")
    ap.add_argument("--sharpness-n", type=int, default=64, help="test captions (and real images) for --sharpness")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {
        "benchmark": "stackgan_step",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if args.sharpness is not None:
        if args.sharpness_n < 2:
            raise SystemExit(f"--sharpness-n {args.sharpness_n}: needs at least 2 captions")
        out["sharpness"] = sharpness(args.sharpness, n=args.sharpness_n)
    else:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        bad = sorted(set(models) - set(PAPER))
        if bad:
            raise SystemExit(f"unknown models {bad}; choose from {sorted(PAPER)}")
        out["results"] = throughput(models, args.steps, args.warmup)
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
