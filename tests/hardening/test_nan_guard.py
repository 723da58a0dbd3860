"""NaN/Inf in the loss: the step is skipped; repeated bad steps stop training with a message and a good checkpoint,
never a NaN model; resuming afterwards finishes normally. Through the real CLI (`t2igan train`), in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from t2igan.apps.cli import main
from t2igan.utils.checkpoint import list_checkpoints, load_checkpoint


def _rows(run: Path) -> dict[int, dict[str, Any]]:
    lines = (run / "logs" / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r for r in map(json.loads, filter(None, lines))}


def test_nan_guard_skips_then_stops_with_a_good_checkpoint(
    hardening_sandbox: Path, hx: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = hardening_sandbox / "runs" / "nan"
    # Batches of steps 3 (alone) and 10-12 (three in a row) are poisoned with NaN; 3 bad steps in a row stop.
    args = hx.train_args(
        hx.cache_of(hardening_sandbox),
        run,
        "debug.nan_steps=[2,9,10,11]",
        "train.max_bad_steps=3",
        "train.tensorboard=false",
    )
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "step 3: non-finite loss/gradients, update skipped (1 in a row)" in err
    assert "error: training stopped: 3 consecutive non-finite steps at step 12" in err
    rows = _rows(run)
    assert rows[3].get("nonfinite") == 1.0 and not rows[4].get("nonfinite")  # skipped once, then training went on
    assert all(rows[s].get("nonfinite") == 1.0 for s in (10, 11))
    assert not (run / "pretrained").exists()  # nothing exported from a failing run

    # The checkpoints left behind verify and hold only finite numbers.
    ckpts = list_checkpoints(run / "checkpoints")
    assert ckpts, "a good checkpoint must be left to resume from"
    for c in ckpts:
        for k, v in _tensors(load_checkpoint(c)["state"]).items():
            assert torch.isfinite(v).all(), (c.name, k)

    # Fix the cause (here: no more poisoned batches) and resume → finishes and exports a finite generator.
    main([*args[: args.index("debug.nan_steps=[2,9,10,11]")], "debug.nan_steps=[]", "--resume"])
    assert list_checkpoints(run / "checkpoints")[-1].name == f"step_{hx.steps:07d}"
    from safetensors.torch import load_file

    gen = load_file(str(run / "pretrained" / "generator" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in gen.values())


def _tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}/{i}"))
    return out
