"""Checkpoints in a restricted, verifiable format — no pickles, nothing executable. The one checkpoint module of every
trainer: the GAN ``Trainer`` (``training/trainer.py``) and the DS-SJE trainer (``text/sje_trainer.py``).

``<run>/checkpoints/step_0001000/`` holds

- ``state.safetensors`` — every tensor: net weights and buffers, optimiser moments, RNG states;
- ``state.json`` — the structure around them (nested dicts/lists of numbers, strings and ``{"__tensor__": key}``
  references), the step and the trainer's ``meta`` (epoch, text dimension, ``run_id``, …);
- ``config.json`` — the trainer's resolved config;
- ``.t2igan-checkpoint.json`` — the ownership marker every folder t2igan builds carries (``utils/outputs.py``);
- ``manifest.json`` — written last: format version, t2igan version, step, run id, and the sha256 and size of *every*
  other file of the folder.

The folder is built under a temporary name and renamed into place (``atomic_dir``), so a crash never leaves half a
checkpoint under a real name. On load the manifest must list exactly the files present, and every checksum is
verified; a corrupt, truncated, forged or incomplete checkpoint is reported in one line and the previous good one is
used instead. Only the last ``keep`` checkpoints of the same run are kept; other runs' are never touched.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2igan import __version__
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json, sha256_file, write_safetensors
from t2igan.utils.outputs import PARTIAL, atomic_dir, json_says

logger = logging.getLogger(__name__)

FORMAT = "t2igan-checkpoint/1"
_STEP_DIR = re.compile(r"^step_(\d{7,})$")
_FILES = ("state.safetensors", "state.json", "config.json")


# -- nested state ↔ (tensors, JSON skeleton) ----------------------------------------------------------------------
def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Replace tensors by ``{"__tensor__": key}`` (stored in ``tensors``); keep JSON types; tag tuples and dicts
    with non-string keys so ``unflatten_state`` restores them exactly."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "root"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten_state(v, tensors, f"{prefix}/{k}") for k, v in obj.items()}
        return {"__items__": [[k, flatten_state(v, tensors, f"{prefix}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: unflatten_state(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


# -- RNG state of code we do not control (ours derives per-step generators from the seed) ------------------------
def rng_state() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [version, list(mt), gauss],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )


# -- save / load ----------------------------------------------------------------------------------------------------
def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step_{step:07d}"


def save_checkpoint(
    root: str | Path,
    step: int,
    state: dict[str, Any],
    config: dict[str, Any],
    meta: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Write ``root/step_XXXXXXX/`` atomically and keep only the newest ``keep`` checkpoints of the same run.

    ``meta["run_id"]`` (the run folder's id, see ``run_folder.py``) is recorded in the manifest; rotation deletes only
    checkpoints with the same id, and a checkpoint of another run is never replaced.
    """
    target = step_dir(root, step)
    run_id = (meta or {}).get("run_id")
    other = read_manifest(target)
    if other is not None and other.get("run_id") != run_id:
        raise T2IError(
            f"a checkpoint of another run ({other.get('run_id')}) is already at step {step}",
            path=target,
            hint="move it away, or train into a new run folder",
        )
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, tensors)
    with atomic_dir(target, kind="checkpoint", is_own=json_says("manifest.json", "format", FORMAT)) as tmp:
        write_safetensors(tmp / "state.safetensors", tensors, metadata={"format": FORMAT})
        atomic_write_json(tmp / "state.json", {"step": step, "meta": meta or {}, "state": skeleton})
        atomic_write_json(tmp / "config.json", config)
        files = {
            p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(tmp.iterdir())
            if p.is_file() and p.name != PARTIAL  # (the in-progress marker is gone once the folder is in place)
        }
        atomic_write_json(
            tmp / "manifest.json",
            {"format": FORMAT, "t2igan_version": __version__, "step": step, "run_id": run_id, "files": files},
        )
    rotate(root, keep, run_id)
    return target


def _step_of(path: Path) -> int | None:
    m = _STEP_DIR.match(path.name)
    return int(m.group(1)) if m else None


def list_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint folders under ``root``, oldest first (by step)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """A checkpoint folder's manifest as a dict, or None if it is missing or unreadable (no verification)."""
    try:
        doc = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def rotate(root: str | Path, keep: int, run_id: str | None = None) -> None:
    """Delete all but the newest ``keep`` checkpoints of run ``run_id``; checkpoints of other runs are never touched."""
    mine = [p for p in list_checkpoints(root) if (m := read_manifest(p)) is not None and m.get("run_id") == run_id]
    for old in mine[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check the manifest and every checksum; return the manifest or raise ``T2IError`` saying what is wrong."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise T2IError("checkpoint has no manifest.json (incomplete write?)", path=path)
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise T2IError("checkpoint manifest is not valid JSON", path=mpath) from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != FORMAT:
        raise T2IError(
            f"unknown checkpoint format {fmt!r}",
            path=path,
            hint=f"this t2igan ({__version__}) reads {FORMAT}",
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not set(_FILES) <= set(files):
        missing = sorted(set(_FILES) - set(files)) if isinstance(files, dict) else list(_FILES)
        raise T2IError(f"checkpoint manifest does not list {', '.join(missing)}", path=mpath)
    present = {p.name for p in path.iterdir()} - {"manifest.json"}
    unlisted = sorted(present - set(files))
    if unlisted:
        raise T2IError(f"checkpoint holds a file its manifest does not list ({unlisted[0]})", path=path / unlisted[0])
    for name, info in files.items():
        f = path / name
        if name not in present or not f.is_file() or f.is_symlink():
            raise T2IError("checkpoint file is missing", path=f)
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("bytes"), int)
            or not isinstance(info.get("sha256"), str)
        ):
            raise T2IError(f"checkpoint manifest entry for {name} is malformed", path=mpath)
        if f.stat().st_size != info["bytes"]:
            raise T2IError(f"checkpoint file is truncated ({f.stat().st_size} of {info['bytes']} bytes)", path=f)
        if sha256_file(f) != info["sha256"]:
            raise T2IError("checkpoint file is corrupt (sha256 mismatch)", path=f)
    return manifest


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify and read one checkpoint → ``{"step", "meta", "state", "config"}``."""
    from safetensors.torch import load_file

    path = Path(path)
    manifest = verify_checkpoint(path)
    # Fresh, aligned copies (not views into the file buffer): vectorised kernels such as fused Adam may round
    # differently on unaligned memory, which would break bit-exact resume.
    tensors = {k: v.clone() for k, v in load_file(str(path / "state.safetensors"), device=str(map_location)).items()}
    doc = json.loads((path / "state.json").read_text())
    config = json.loads((path / "config.json").read_text())
    if not (doc.get("step") == manifest.get("step") == _step_of(path)):
        raise T2IError(
            f"checkpoint steps disagree (folder {_step_of(path)}, manifest {manifest.get('step')}, "
            f"state {doc.get('step')})",
            path=path,
        )
    return {
        "step": int(doc["step"]),
        "meta": doc.get("meta", {}),
        "state": unflatten_state(doc["state"], tensors),
        "config": config,
        "path": path,
    }


def load_latest(root: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest checkpoint that verifies; corrupt ones are logged (a warning) and skipped.

    Returns None if ``root`` holds no checkpoint at all; raises ``T2IError`` if there are some but none is valid.
    """
    candidates = list_checkpoints(root)
    if not candidates:
        return None
    problems = []
    for path in reversed(candidates):
        try:
            return load_checkpoint(path, map_location)
        except T2IError as e:
            problems.append(str(e))
            logger.warning("skipping bad checkpoint: %s", e)
        except Exception as e:  # a file that verifies but does not parse: report, fall back
            problems.append(f"{path}: {e}")
            logger.warning("skipping unreadable checkpoint %s: %s", path, e)
    raise T2IError(f"no valid checkpoint in {root} ({len(problems)} corrupt)", hint="start without --resume")
