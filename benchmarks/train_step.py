"""Training-step speed of GAN-CLS at batch 64, 64×64. Prints ONE JSON line.

Measured, each as the median over timed steps after warm-up, on random data with 1024-d text:

- (a) ``port``: the architecture of the most used PyTorch port (widths 64, no residual blocks) — fp32 and bf16
  (``channels_last`` on) — plus ``port_reference``: that port's own step (5 D forwards, 2 G forwards, fake not
  detached, D weight grads in the G step, feature matching + L1) on the same nets, for a same-load ratio;
- (b) ``paper``: the paper's widths (ngf 128, ndf 64, residual blocks), fp32 and bf16;
- (c) ``cpu``: the CPU preset (widths 32, residual blocks), fp32 and bf16;
- FLOPs per step (``torch.utils.flop_counter.FlopCounterMode``, fp32), the conv ceiling of this machine (a large 3×3
  conv, channels_last, fp32 and bf16) and the achieved fraction of it; the load average before and after.

    python benchmarks/train_step.py            # ~2–4 minutes on 2 idle cores
    python benchmarks/train_step.py --quick    # fewer steps, (a) only plus the ceiling
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from t2igan.training.config import load_config
from t2igan.training.reed_system import ReedSystem

BATCH, SIZE, TEXT_DIM = 64, 64, 1024


def make_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(BATCH, 3, SIZE, SIZE, generator=g) * 2 - 1,
        "text_emb": torch.randn(BATCH, TEXT_DIM, generator=g),
        "wrong_emb": torch.randn(BATCH, TEXT_DIM, generator=g),
    }


def build(preset: str, precision: str, *extra: str) -> ReedSystem:
    cfg = load_config(
        None,
        [
            f"model.preset={preset}",
            f"train.precision={precision}",
            "loss.variant=gan-cls",
            f"train.batch_size={BATCH}",
            f"data.size={SIZE}",
            "train.steps=1",
            *extra,
        ],
    )
    return ReedSystem(cfg, TEXT_DIM, torch.device("cpu"))


def stepper(system: ReedSystem, batch: dict[str, torch.Tensor]) -> Callable[[int], object]:
    return lambda i: system.train_step(batch, i)


def time_round_robin(fns: dict[str, Callable[[int], object]], warmup: int, steps: int) -> dict[str, list[float]]:
    """Warm each up, then time one step of each per round."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(steps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(warmup + i)
            times[name].append(time.perf_counter() - t0)
    return times


def port_reference_step(system: ReedSystem, batch: dict[str, torch.Tensor]) -> None:
    """The popular port's GAN-CLS step (label smoothing 0.9, feature matching ×100, L1 ×50), on our nets."""
    G, D, x, h, hw = system.G, system.D, batch["image"], batch["text_emb"], batch["wrong_emb"]
    x = x.contiguous(memory_format=system.memory_format)
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.full((BATCH,), 0.9), torch.zeros(BATCH)
    system.opt_d.zero_grad()
    real = D(x, h)
    wrong = D(x, hw)
    fake = G(torch.randn(BATCH, system.z_dim), h)
    fake_out = D(fake, h)  # not detached: G's grads are computed and thrown away
    (bce(real, ones) + bce(wrong, zeros) + bce(fake_out, zeros)).backward()
    system.opt_d.step()
    system.opt_g.zero_grad()
    fake = G(torch.randn(BATCH, system.z_dim), h)
    fake_feat = D.features(fake)
    out = D.head(fake_feat, h)
    real_feat = D.features(x)  # the extra D(real) pass for feature matching
    loss = bce(out, torch.ones(BATCH)) + 100 * F.mse_loss(fake_feat.mean(0), real_feat.mean(0).detach())
    loss = loss + 50 * F.l1_loss(fake, x)
    loss.backward()  # D's weight grads computed too
    system.opt_g.step()


def count_flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def conv_ceiling(dtype: torch.dtype, reps: int) -> float:
    """GFLOP/s of a large 3×3 conv (64×256×16×16 → 256), channels_last: what this CPU can do at best."""
    x = torch.randn(64, 256, 16, 16).to(memory_format=torch.channels_last, dtype=dtype)
    w = torch.randn(256, 256, 3, 3).to(memory_format=torch.channels_last, dtype=dtype)
    flops = 2 * 64 * 256 * 16 * 16 * 256 * 9
    with torch.inference_mode():
        for _ in range(2):
            F.conv2d(x, w, padding=1)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            times.append(time.perf_counter() - t0)
    return flops / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run: (a) only, fewer steps")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per setting (default 8, quick 3)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="also time (a) with train.compile=true (slow to build)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (3 if args.quick else 8)
    warmup = 1 if args.quick else 2
    load_before = os.getloadavg()
    batch = make_batch()
    result: dict[str, object] = {
        "bench": "train_step",
        "batch": BATCH,
        "image_size": SIZE,
        "variant": "gan-cls",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "timed_steps": steps,
    }
    ceiling = {
        "fp32": conv_ceiling(torch.float32, 3 if args.quick else 6),
        "bf16": conv_ceiling(torch.bfloat16, 3 if args.quick else 6),
    }
    result["conv_ceiling_gflops"] = {k: round(v, 1) for k, v in ceiling.items()}

    settings = [("a_port", "port")] + ([] if args.quick else [("b_paper", "paper"), ("c_cpu", "cpu")])
    for label, preset in settings:
        flops = count_flops(lambda p=preset: build(p, "fp32").train_step(batch, 0))
        entry: dict[str, object] = {"gflop_per_step": round(flops / 1e9, 1)}
        # All settings of a preset are timed round-robin, one step each per round, so a change in the machine's
        # load hits them alike and their ratios stay meaningful.
        steps_fns: dict[str, Callable[[int], object]] = {}
        for precision in ("fp32", "bf16"):
            steps_fns[precision] = stepper(build(preset, precision), batch)
            if preset == "port" and args.compile:
                steps_fns[f"{precision}_compile"] = stepper(build(preset, precision, "train.compile=true"), batch)
        if preset == "port":
            ref = build(preset, "fp32")
            steps_fns["port_reference_fp32"] = lambda i, r=ref: port_reference_step(r, batch)
            ref_flops = count_flops(lambda r=build(preset, "fp32"): port_reference_step(r, batch))
        times = time_round_robin(steps_fns, warmup, steps)
        for name, ts in times.items():
            t = statistics.median(ts)
            rec: dict[str, object] = {"images_per_s": round(BATCH / t, 1), "s_per_step": round(t, 4)}
            if name == "port_reference_fp32":
                rec["gflop_per_step"] = round(ref_flops / 1e9, 1)
            else:
                prec = name.split("_")[0]
                rec["achieved_gflops"] = round(flops / t / 1e9, 1)
                rec["fraction_of_conv_ceiling"] = round(flops / t / 1e9 / ceiling[prec], 3)
            entry[name] = rec
        if preset == "port":
            ours = [v["images_per_s"] for k, v in entry.items() if k.startswith(("fp32", "bf16"))]  # type: ignore[index]
            entry["speedup_best_vs_port_reference"] = round(max(ours) / entry["port_reference_fp32"]["images_per_s"], 2)  # type: ignore[index]
        result[label] = entry
    result["loadavg_before"] = [round(x, 2) for x in load_before]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
