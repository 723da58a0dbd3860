"""A training run writes only inside the run folder the user names: not the current directory, not $HOME, not the
temp folder, not the data cache. The reference run (`python -m t2igan train` with cwd, HOME, TMPDIR and
XDG_CACHE_HOME inside a sandbox, TensorBoard and sample grids on) is checked against a snapshot of the sandbox."""

from __future__ import annotations

from pathlib import Path


def test_training_writes_only_inside_the_run_dir(reference_run: dict, hardening_sandbox: Path) -> None:
    before: dict = reference_run["before"]  # type: ignore[assignment]
    after: dict = reference_run["after"]  # type: ignore[assignment]
    run_rel = str(Path(reference_run["run"]).relative_to(hardening_sandbox))  # type: ignore[arg-type]
    # PyTorch itself (not t2igan) creates an EMPTY `$TMPDIR/torchinductor_<user>` folder when the optimiser first
    # imports torch._dynamo; tolerated only while empty (asked: trainer to point TORCHINDUCTOR_CACHE_DIR into
    # the run folder).
    inductor = [p for p in (hardening_sandbox / "tmp").glob("torchinductor_*") if p.is_dir()]
    assert all(not any(p.iterdir()) for p in inductor), "torch wrote files into $TMPDIR"
    ignored = {"tmp", *(str(p.relative_to(hardening_sandbox)) for p in inductor)} if inductor else set()
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)} - ignored
    outside = sorted(p for p in changed if p != run_rel and not p.startswith(run_rel + "/"))
    # The run folder's parent ("runs") only changed because the run folder was created in it.
    assert outside in ([], ["runs"]), outside
    for scratch in ("home", "tmp", "xdg"):
        left = [p for p in (hardening_sandbox / scratch).iterdir() if p not in inductor]
        assert left == [], f"wrote into ${scratch.upper()}: {left}"
    # ... and what it wrote is the documented run folder layout, with nothing left half-written.
    run = Path(reference_run["run"])  # type: ignore[arg-type]
    top = sorted(p.name for p in run.iterdir())
    assert top == ["checkpoints", "config.yaml", "logs", "pretrained", "samples"], top
    leftovers = [str(p) for p in run.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".old")]
    assert leftovers == []
