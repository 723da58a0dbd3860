"""A run folder's lock and identity: one trainer at a time, one run per folder.

    <run>/.t2igan-run.json   {"kind": "run", "run_id": "…", "created": "…", "t2igan_version": "…"}
    <run>/.t2igan-run.lock   held with ``fcntl.flock`` by the training process (its pid inside, for the message)

``open_run`` (entered by ``Trainer.fit``) enforces:

- **The folder** must be new, empty or a run folder (its marker, or ``config.yaml`` + ``checkpoints/`` of a run from
  before the marker existed). Anything else is a one-line error: training writes ``config.yaml``, ``logs/``,
  ``samples/`` there and must not replace someone's files.
- **Lock.** A second trainer on the same folder gets a one-line error naming the process that holds it. The lock is the
  kernel's: it goes away when its process ends, however it ends, so a killed trainer never blocks the next one.
- **Identity.** A new run gets a random run id, recorded in the marker and in every checkpoint's manifest. ``--resume``
  refuses a checkpoint of another run, and checkpoint rotation deletes only this run's checkpoints.
- **Config.** Without ``--resume``, a folder whose run already has checkpoints is an error (continue it with
  ``--resume`` or choose a new folder), and so is a different config into a run that has none yet. With ``--resume``
  the config must equal the run's ``config.yaml`` except for the keys in ``RESUMABLE`` (length, budget, logging,
  checkpoint cadence, device and paths: what does not change the computed weights).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from t2igan.utils.checkpoint import list_checkpoints
from t2igan.utils.config import config_diff
from t2igan.utils.errors import T2IError
from t2igan.utils.outputs import check_replaceable, read_marker, write_marker

logger = logging.getLogger(__name__)

RUN_KIND = "run"
LOCK_NAME = f".t2igan-{RUN_KIND}.lock"

# Config keys that may differ between a run and its --resume (dotted; a trailing ".*" covers a whole section).
RESUMABLE = (
    "run_dir",
    "data.cache",
    "data.text_encoder",
    "train.steps",
    "train.epochs",
    "train.max_minutes",
    "train.max_cpu_minutes",
    "train.eval_every",
    "train.eval_minutes",
    "train.eval_n",
    "train.eval_evaluator",
    "train.export_best",
    "train.device",
    "train.threads",
    "train.progress",
    "train.tensorboard",
    "train.log_every",
    "train.sample_every",
    "train.sample_n",
    "train.ckpt_every",
    "train.keep_ckpts",
    "train.max_bad_steps",
    "train.max_skipped_share",
    "train.max_weight_growth",
    "train.export",
    "debug.*",
)


@dataclass
class RunFolder:
    """An open run folder: its root and run id (``None`` on non-main DDP ranks before the main rank wrote it)."""

    root: Path
    run_id: str | None

    def check_checkpoint(self, ckpt: dict[str, Any]) -> None:
        """A checkpoint ``--resume`` is about to load must belong to this run (legacy ones carry no id)."""
        theirs = ckpt.get("meta", {}).get("run_id")
        if theirs is not None and self.run_id is not None and theirs != self.run_id:
            raise T2IError(
                f"checkpoint belongs to run {theirs}, but this folder's run is {self.run_id}",
                path=ckpt.get("path"),
                hint="resume the run folder the checkpoint came from, or move it out of checkpoints/",
            )


@contextlib.contextmanager
def open_run(root: str | Path, config: dict[str, Any], *, resume: bool, main: bool = True) -> Iterator[RunFolder]:
    """Lock ``root`` and check its identity and config (main process only); yields the ``RunFolder``."""
    root = Path(root)
    if not main:  # DDP: only rank 0 writes; the others only need the id to check checkpoints with
        marker = read_marker(root, RUN_KIND)
        yield RunFolder(root, marker.get("run_id") if marker else None)
        return
    check_replaceable(root, RUN_KIND, is_own=_is_run_folder)
    root.mkdir(parents=True, exist_ok=True)
    fd = _lock(root)
    try:
        yield RunFolder(root, _identity(root, config, resume))
    finally:
        _unlock(fd)


def reset_run(root: str | Path) -> str:
    """Start a new run in ``root``, a folder the caller owns (``t2igan demo`` trains afresh in its own folder): the old
    run's checkpoints, logs, samples, export and config are deleted and a new run id is marked. Returns the id."""
    import shutil

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd = _lock(root)
    try:
        for sub in ("checkpoints", "logs", "samples", "pretrained"):
            shutil.rmtree(root / sub, ignore_errors=True)
        (root / "config.yaml").unlink(missing_ok=True)
        return _new_identity(root)
    finally:
        _unlock(fd)


def _is_run_folder(folder: Path) -> bool:
    if read_marker(folder, RUN_KIND) is not None:
        return True
    if {p.name for p in folder.iterdir()} <= {LOCK_NAME, ".cache"}:  # being set up (.cache: see Trainer.__init__)
        return True
    return (folder / "config.yaml").is_file() and (folder / "checkpoints").is_dir()  # before the marker existed


def with_current_defaults(old: dict[str, Any]) -> dict[str, Any]:
    """A run's config as this t2igan reads it: keys added since the run started (absent from its config.yaml) take
    their current defaults, so that resuming an older run does not report them as changed."""
    from t2igan.training.config import TrainConfig

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return out

    return merge(yaml.safe_load(yaml.safe_dump(TrainConfig().to_dict())), old)


def _identity(root: Path, config: dict[str, Any], resume: bool) -> str:
    """Check the run's config against ``config``; return the run id (a new run gets a new marker)."""
    marker = read_marker(root, RUN_KIND)
    steps = _checkpoint_steps(root)
    old = _read_config(root)
    if not resume and steps:
        raise T2IError(
            f"already holds a training run with checkpoints (newest: step {steps[-1]})",
            path=root,
            hint="continue it with --resume, or choose a new --out",
        )
    if old is not None:
        old = with_current_defaults(old)
        diff = config_diff(old, yaml.safe_load(yaml.safe_dump(config)), ignore=RESUMABLE)  # as the YAML file holds it
        if diff:
            shown = "; ".join(f"{k}: {a!r} → {b!r}" for k, a, b in diff[:3]) + (" …" if len(diff) > 3 else "")
            raise T2IError(
                f"the config differs from this run's config.yaml ({shown})",
                path=root,
                hint="resume with the run's own config (t2igan train --out RUN --resume) or choose a new --out",
            )
    if not resume and (root / "logs" / "metrics.jsonl").is_file():  # the run starts over: so does its log
        (root / "logs" / "metrics.jsonl").unlink()
    if marker is not None and isinstance(marker.get("run_id"), str):
        return str(marker["run_id"])
    run_id = _new_identity(root)
    if old is not None:
        logger.info("note: %s is a run folder from an older t2igan; it is now run %s", root, run_id)
    return run_id


def _new_identity(root: Path) -> str:
    run_id = uuid.uuid4().hex[:12]
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_marker(root, RUN_KIND, run_id=run_id, created=created)
    return run_id


def _checkpoint_steps(root: Path) -> list[int]:
    """Steps of the checkpoint folders in ``root/checkpoints`` (whichever run wrote them)."""
    return [int(path.name.split("_")[1]) for path in list_checkpoints(root / "checkpoints")]


def _read_config(root: Path) -> dict[str, Any] | None:
    path = root / "config.yaml"
    if not path.is_file():
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise T2IError(
            f"the run's config is unreadable ({e})", path=path, hint="restore it or choose a new --out"
        ) from None
    return doc if isinstance(doc, dict) else None


def _lock(root: Path) -> int | None:
    """Take the folder's lock (non-blocking); a held lock is a one-line error naming its process."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): no lock
        return None
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise T2IError(
            f"another t2igan process (pid {holder}) is training in this run folder",
            path=root,
            hint="wait for it to finish or stop it, or choose another --out",
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock
