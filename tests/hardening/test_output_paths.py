"""A training run writes only inside the run folder the user names: not the current directory, not $HOME, not the
temp folder, not the data cache. The reference run (`python -m t2igan train` with cwd, HOME, TMPDIR and
XDG_CACHE_HOME inside a sandbox, TensorBoard and sample grids on) is checked against a snapshot of the sandbox."""

from __future__ import annotations

from pathlib import Path


def test_training_writes_only_inside_the_run_dir(reference_run: dict, hardening_sandbox: Path) -> None:
    before: dict = reference_run["before"]  # type: ignore[assignment]
    after: dict = reference_run["after"]  # type: ignore[assignment]
    run_rel = str(Path(reference_run["run"]).relative_to(hardening_sandbox))  # type: ignore[arg-type]
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    outside = sorted(p for p in changed if p != run_rel and not p.startswith(run_rel + "/"))
    # The run folder's parent ("runs") only changed because the run folder was created in it.
    assert outside in ([], ["runs"]), outside
    for scratch in ("home", "tmp", "xdg"):
        left = list((hardening_sandbox / scratch).iterdir())
        assert left == [], f"wrote into ${scratch.upper()}: {left}"
    # ... and what it wrote is the documented run folder layout, with nothing left half-written.
    run = Path(reference_run["run"])  # type: ignore[arg-type]
    top = sorted(p.name for p in run.iterdir())
    # (.cache: PyTorch's torch._dynamo cache folder, which the trainer points into the run via TORCHINDUCTOR_CACHE_DIR;
    # .t2igan-run.json / .lock: the run's identity and lock, training/run_folder.py)
    assert [t for t in top if t != ".cache"] == [
        ".t2igan-run.json",
        ".t2igan-run.lock",
        "checkpoints",
        "config.yaml",
        "logs",
        "pretrained",
        "samples",
    ], top
    leftovers = [str(p) for p in run.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".old")]
    assert leftovers == []
