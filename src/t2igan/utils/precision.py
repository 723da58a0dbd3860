"""Which low precision a device computes natively: the ``auto`` setting of training precisions."""

from __future__ import annotations

import torch


def native_bf16(device: torch.device) -> bool:
    """bf16 is native on GPUs that support it and on CPUs with AVX512-BF16 or AMX; elsewhere it is emulated and
    slower than fp32."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )
