"""``train.precision=fp16``: fp16 autocast with a GradScaler (for GPUs without bf16).

This machine has no GPU, so the scaler path is tested on the CPU with the device check widened
(``FP16_DEVICE_TYPES``): torch runs fp16 autocast and ``GradScaler("cpu")`` there, and the step logic — scale,
backward, unscale, finiteness check, step or skip, update of the scale — is the one a CUDA run uses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from t2igan.training import system as system_mod
from t2igan.training.system import get_system_class
from t2igan.utils.errors import T2IError

from .conftest import FakeDataset

CPU = torch.device("cpu")


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    monkeypatch.setattr(system_mod, "FP16_DEVICE_TYPES", frozenset({"cuda", "cpu"}))


def _reed(tiny_config, *sets: str):
    cfg = tiny_config("train.precision=fp16", *sets)
    return get_system_class("reed")(cfg, 12, CPU)


def _batch(data: FakeDataset, step: int) -> dict[str, torch.Tensor]:
    return data.batch(np.arange(8) + 8 * (step % 4), 0)


def test_fp16_on_a_cpu_is_a_one_line_error(tiny_config) -> None:
    with pytest.raises(T2IError, match=r"fp16 needs a CUDA GPU.*bf16") as e:
        _reed(tiny_config)
    assert "\n" not in str(e.value)


def test_unknown_precision_is_refused(tiny_config) -> None:
    with pytest.raises(T2IError, match="fp32, bf16, fp16"):
        tiny_config("train.precision=fp8")


@pytest.mark.parametrize("reuse", [True, False])
def test_reed_fp16_step_scales_and_trains(tiny_config, fp16_on_cpu, reuse: bool) -> None:
    s = _reed(tiny_config, f"loss.reuse_d_fake={str(reuse).lower()}")
    assert s.scaler is not None and s.amp_dtype == torch.float16
    s.scaler.load_state_dict({**s.scaler.state_dict(), "scale": 16.0})  # a scale that does not overflow here
    data = FakeDataset()
    g0 = [p.detach().clone() for p in s.G.parameters()]
    logs = [s.train_step(_batch(data, i), i) for i in range(3)]
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert not any("nonfinite" in log or "amp_overflow" in log for log in logs)
    assert any(not torch.equal(a, b) for a, b in zip(g0, s.G.parameters(), strict=True))
    # the loss scale is part of the state (exact resume)
    state = s.state_dict()
    assert state["grad_scaler"]["scale"] == s.scaler.get_scale()
    other = _reed(tiny_config, f"loss.reuse_d_fake={str(reuse).lower()}")
    other.scaler.load_state_dict({**other.scaler.state_dict(), "scale": 8.0})
    other.load_state_dict(state)
    assert other.scaler.get_scale() == s.scaler.get_scale()


def test_reed_fp16_overflow_skips_the_update_halves_the_scale_and_is_not_a_bad_step(tiny_config, fp16_on_cpu) -> None:
    s = _reed(tiny_config)
    s.scaler.load_state_dict({**s.scaler.state_dict(), "scale": 2.0**100})  # fp16 gradients overflow for sure
    data = FakeDataset()
    g0 = [p.detach().clone() for p in s.G.parameters()]
    d0 = [p.detach().clone() for p in s.D.parameters()]
    bn0 = [b.detach().clone() for b in s.G.buffers()]
    log = s.train_step(_batch(data, 0), 0)
    assert log.get("amp_overflow") == 1.0 and "nonfinite" not in log
    assert s.scaler.get_scale() == 2.0**99
    assert all(torch.equal(a, b) for a, b in zip(g0, s.G.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(d0, s.D.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(bn0, s.G.buffers(), strict=True))  # BatchNorm statistics restored


def test_fp32_and_bf16_have_no_scaler(tiny_config) -> None:
    for p in ("fp32", "bf16"):
        s = get_system_class("reed")(tiny_config(f"train.precision={p}"), 12, CPU)
        assert s.scaler is None and "grad_scaler" not in s.state_dict()


@pytest.mark.parametrize("name", ["stackgan", "stackgan++"])
def test_stackgan_fp16_step_through_the_shared_optimizer_step(tmp_path, fp16_on_cpu, name: str) -> None:
    from t2igan.training.config import load_config

    from ..stackgan.conftest import TINY, BlobDataset

    size = 16 if name == "stackgan" else 32
    cfg = load_config(
        None, [*TINY, f"run_dir={tmp_path / 'r'}", f"model.name={name}", f"data.size={size}", "train.precision=fp16"]
    )
    s = get_system_class(name)(cfg, 12, CPU)
    data = BlobDataset(size=size)
    logs = [s.train_step(data.batch(np.arange(8), 0), i) for i in range(2)]
    assert all(math.isfinite(v) for log in logs for v in log.values()) and not any("nonfinite" in g for g in logs)
    s.scaler.load_state_dict({**s.scaler.state_dict(), "scale": 2.0**100})
    before = [p.detach().clone() for p in s.G.parameters()]
    log = s.train_step(data.batch(np.arange(8), 0), 2)
    assert "nonfinite" not in log and s.scaler.get_scale() < 2.0**100  # overflow: skipped, scale lowered
    assert all(torch.equal(a, b) for a, b in zip(before, s.G.parameters(), strict=True))
