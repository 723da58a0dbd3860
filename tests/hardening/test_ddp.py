"""`torchrun --standalone --nproc_per_node=2 -m t2igan train …` on CPU (gloo): a real 2-process DDP run.

- reproducible: two identical 2-process runs end with identical weights (per-rank seeding);
- in sync: both ranks hold the same parameters at the end;
- rank 0 alone logs and writes; the run folder has the same files and tensor shapes as a single-process run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from t2igan.utils.checkpoint import list_checkpoints

# Runs the real CLI; after training, each rank writes a hash of its parameters (to check the ranks agree).
DUMP_WRAPPER = r"""
import hashlib, json, os, sys
from pathlib import Path
import t2igan.training.trainer as T

_fit = T.Trainer.fit
def fit(self):
    out = _fit(self)
    h = hashlib.sha256()
    for name, net in sorted(self.system.nets().items()):
        for k, p in net.named_parameters():
            h.update(f"{name}.{k}".encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
    dump = Path(os.environ["T2IGAN_TEST_DUMP"]) / f"rank{self.rank}.json"
    dump.write_text(json.dumps({"rank": self.rank, "world_size": self.world_size, "params_sha256": h.hexdigest()}))
    return out
T.Trainer.fit = fit
from t2igan.apps.cli import main
main(sys.argv[1:])
"""


def _files(run: Path) -> set[str]:
    return {
        str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and not p.name.startswith("events.out.tfevents")
    }


def _state(run: Path) -> dict[str, torch.Tensor]:
    last = list_checkpoints(run / "checkpoints")[-1]
    return {k: v for k, v in load_file(str(last / "state.safetensors")).items() if not k.startswith("/rng/")}


def test_two_process_ddp_is_reproducible_and_rank0_only(
    hardening_sandbox: Path, reference_run: dict, hx: Any, run_torchrun: Any, tmp_path: Path
) -> None:
    cache = hx.cache_of(hardening_sandbox)
    runs = hardening_sandbox / "runs"
    first = run_torchrun(
        2, ["-m", "t2igan", *hx.train_args(cache, runs / "ddp_a", "train.tensorboard=false")], cwd=hardening_sandbox
    )

    wrapper = tmp_path / "train_and_dump.py"
    wrapper.write_text(DUMP_WRAPPER)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    run_torchrun(
        2,
        [str(wrapper), *hx.train_args(cache, runs / "ddp_b", "train.tensorboard=false")],
        cwd=hardening_sandbox,
        env={"T2IGAN_TEST_DUMP": str(dumps)},
    )

    # Reproducible: the same weights, optimiser moments and exported generator, bit for bit.
    a, b = _state(runs / "ddp_a"), _state(runs / "ddp_b")
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    gen = Path("pretrained/generator/model.safetensors")
    assert (runs / "ddp_a" / gen).read_bytes() == (runs / "ddp_b" / gen).read_bytes()

    # Really distributed, and in sync: two ranks, identical parameters at the end.
    ranks = [json.loads((dumps / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["params_sha256"] == ranks[1]["params_sha256"]

    # Rank 0 alone logs: one start line, one metrics line per step.
    assert first.stderr.count("training reed/") == 1, first.stderr[-2000:]
    steps = [json.loads(x)["step"] for x in (runs / "ddp_a" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, hx.steps + 1))

    # Same results shape as single-process: the same files, checkpoints and tensor shapes...
    ref: Path = reference_run["run"]  # type: ignore[assignment]
    assert _files(runs / "ddp_a") == _files(ref)
    ref_state = _state(ref)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in ref_state.items()}
    # ... but not the same numbers: each rank saw half of every batch with its own noise (two independent
    # single-process trainings writing one folder would have reproduced the reference exactly).
    assert any(not torch.equal(a[k], ref_state[k]) for k in a if "/nets/G/" in k)
