"""Human ranking, as the StackGAN paper evaluated its models (Zhang et al., 2017, §5.1: people rank the outputs of
several models for the same caption).

``t2igan rank serve RUN …`` starts a local page (FastAPI, 127.0.0.1; the page is ``apps/templates/rank.html``): a
test caption and one image from each run, in random order; the user ranks them (1 = best). Trials and rankings are
stored in SQLite, the run behind each slot only on the server. ``t2igan rank report`` prints every run's mean rank
(± standard error) and the number of trials.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from t2igan.utils.errors import T2IError
from t2igan.utils.templates import render

SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (id TEXT PRIMARY KEY, caption TEXT, seed INTEGER, slots TEXT, created REAL);
CREATE TABLE IF NOT EXISTS rankings (trial_id TEXT, run TEXT, rank INTEGER, created REAL,
                                     PRIMARY KEY (trial_id, run));
"""

DB_TIMEOUT_S = 5.0  # how long to wait for a database another process holds locked


def _db_error(e: sqlite3.Error, path: Path) -> T2IError:
    """A sqlite3 error → one line naming the database and what to do."""
    text = str(e).lower()
    if "locked" in text or "busy" in text:
        return T2IError(
            "the ranking database is locked by another program",
            path=path,
            hint="stop the other `t2igan rank` (or sqlite3 shell) using it, or pass another --db",
        )
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return T2IError("not an SQLite database (or a damaged one)", path=path, hint="pass a new file with --db")
    return T2IError(f"cannot use the ranking database ({e})", path=path, hint="pass another file with --db")


class RankStore:
    """SQLite storage of trials (caption, seed, slot → run) and rankings.

    Opening checks the file first: a directory, a non-SQLite file, someone else's SQLite database (other tables) or
    a database another process keeps locked is a one-line `T2IError`, and nothing is written into it.
    """

    def __init__(self, path: str | Path, timeout: float | None = None) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise T2IError("the ranking database is not a regular file", path=self.path, hint="pass a file with --db")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        try:
            self.db = sqlite3.connect(
                str(self.path), check_same_thread=False, timeout=DB_TIMEOUT_S if timeout is None else timeout
            )
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            foreign = sorted(tables - {"trials", "rankings"})
            if foreign:
                self.db.close()
                raise T2IError(
                    f"an SQLite database of something else (tables {', '.join(foreign[:4])})",
                    path=self.path,
                    hint="pass a new file with --db; nothing was written to this one",
                )
            self.db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise _db_error(e, self.path) from None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """The store's lock, with sqlite errors (a lock held elsewhere, a damaged file) as `T2IError`."""
        with self.lock:
            try:
                yield
            except sqlite3.Error as e:
                raise _db_error(e, self.path) from None

    def add_trial(self, caption: str, seed: int, slots: Sequence[str]) -> str:
        tid = uuid.uuid4().hex
        with self._guard(), self.db:
            self.db.execute(
                "INSERT INTO trials VALUES (?, ?, ?, ?, ?)", (tid, caption, seed, json.dumps(list(slots)), time.time())
            )
        return tid

    def slots(self, trial_id: str) -> list[str] | None:
        with self._guard():
            row = self.db.execute("SELECT slots FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def add_ranking(self, trial_id: str, ranks_by_run: dict[str, int]) -> None:
        with self._guard(), self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO rankings VALUES (?, ?, ?, ?)",
                [(trial_id, run, r, time.time()) for run, r in ranks_by_run.items()],
            )

    def count(self) -> int:
        with self._guard():
            return self.db.execute("SELECT COUNT(DISTINCT trial_id) FROM rankings").fetchone()[0]

    def mean_ranks(self) -> list[dict[str, Any]]:
        """Per run: mean rank, its standard error and the number of rankings, best first."""
        with self._guard():
            rows = self.db.execute(
                "SELECT run, AVG(rank), AVG(rank * rank), COUNT(*) FROM rankings GROUP BY run"
            ).fetchall()
        out = []
        for run, mean, mean_sq, n in rows:
            var = max(mean_sq - mean * mean, 0.0) * n / max(n - 1, 1)
            out.append({"run": run, "mean_rank": mean, "stderr": math.sqrt(var / n), "n": n})
        return sorted(out, key=lambda r: r["mean_rank"])


def _data_uri(image: Any) -> str:
    from t2igan.utils.images import to_pil

    buf = io.BytesIO()
    to_pil(image)[0].save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def create_app(
    generators: dict[str, Any], captions: Sequence[str], store: RankStore, seed: int = 0, port: int | None = None
) -> Any:
    """FastAPI app: ``GET /`` page, ``GET /api/trial``, ``POST /api/rank``, ``GET /api/report``.

    ``generators`` maps run name → ``generate(captions, seeds) -> [-1,1] images``. Like `t2igan serve`, it answers
    only requests addressed to 127.0.0.1/localhost (on ``port`` when given) from its own page, JSON bodies only
    (`t2igan.apps.serve_guard`).
    """
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse

    from t2igan.apps.serve_guard import HostPolicy, RequestGuard

    if len(generators) < 2:
        raise T2IError("ranking needs at least two runs to compare")
    if not captions:
        raise T2IError("no captions to rank with")
    rng = random.Random(seed)
    rng_lock = threading.Lock()
    page_html = render("t2igan.apps", "rank.html")
    app = FastAPI(title="t2igan rank")

    @app.exception_handler(T2IError)
    async def _store_error(_: Any, e: T2IError) -> JSONResponse:  # e.g. the database locked by another program
        return JSONResponse({"detail": str(e)}, status_code=503)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_html

    @app.get("/api/trial")
    def trial() -> dict[str, Any]:
        with rng_lock:
            caption = captions[rng.randrange(len(captions))]
            sample_seed = rng.randrange(2**31)
            runs = list(generators)
            rng.shuffle(runs)
        images = [_data_uri(generators[r]([caption], [sample_seed])) for r in runs]
        tid = store.add_trial(caption, sample_seed, runs)
        return {"trial_id": tid, "caption": caption, "images": images, "done": store.count()}

    @app.post("/api/rank")
    def rank(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        trial_id, ranks = body.get("trial_id"), body.get("ranks")
        if not isinstance(trial_id, str) or not isinstance(ranks, list) or not all(type(r) is int for r in ranks):
            raise HTTPException(422, "send {trial_id: str, ranks: [int, …]}")
        runs = store.slots(trial_id)
        if runs is None:
            raise HTTPException(404, "unknown trial")
        if sorted(ranks) != list(range(1, len(runs) + 1)):
            raise HTTPException(422, f"give each of the {len(runs)} images a different rank from 1 to {len(runs)}")
        store.add_ranking(trial_id, dict(zip(runs, ranks, strict=True)))
        return {"ok": True, "done": store.count()}

    @app.get("/api/report")
    def report() -> list[dict[str, Any]]:
        return store.mean_ranks()

    app.add_middleware(
        RequestGuard,
        policy=HostPolicy("127.0.0.1", port),
        max_body=64 * 1024,
        content_types={"/api/rank": ("application/json",)},
    )
    return app


def format_report(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | mean rank ↓ | ± s.e. | rankings |", "|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['mean_rank']:.2f} | {r['stderr']:.2f} | {r['n']} |" for r in rows]
    return "\n".join(lines)


@click.group()
def rank() -> None:
    """Human ranking of several runs' outputs for the same caption (StackGAN's human evaluation).

    \b
    Example:
      t2igan rank serve runs/gan-cls runs/gan-int-cls --db rank.sqlite
      t2igan rank report --db rank.sqlite
    """


@rank.command("serve")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--db", type=click.Path(path_type=Path), default=Path("rank.sqlite"), show_default=True)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Dataset/cache for the test captions.")
@click.option("--port", default=8766, show_default=True)
@click.option("--seed", default=0, show_default=True)
def rank_serve(runs: tuple[Path, ...], db: Path, data: Path | None, port: int, seed: int) -> None:
    """Serve the ranking page on http://127.0.0.1:PORT for RUNS (two or more run folders)."""
    from t2igan.utils.optional import require

    require("fastapi", "uvicorn", "jinja2", extra="web", what="t2igan rank serve")
    import uvicorn

    from t2igan.data.cache import open_cache
    from t2igan.metrics.sources import pipeline_generate, run_data_path

    data_path = data or run_data_path(runs[0])
    if data_path is None:
        raise T2IError("cannot tell which data the runs used", hint="pass --data DATASET_OR_CACHE")
    cache = open_cache(data_path)
    test = cache.test_indices()
    offsets = cache.caption_offsets
    captions = [cache.flat_captions[j] for i in test for j in range(offsets[i], offsets[i + 1])]
    names: dict[str, Any] = {}
    for r in runs:
        names[str(r)] = pipeline_generate(r, cache)[0]
    app = create_app(names, captions, RankStore(db), seed=seed, port=port)
    click.echo(f"ranking {len(runs)} runs on http://127.0.0.1:{port}  (rankings → {db}; Ctrl-C to stop)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@rank.command("report")
@click.option("--db", type=click.Path(path_type=Path), default=Path("rank.sqlite"), show_default=True)
def rank_report(db: Path) -> None:
    """Print every run's mean rank (1 = best) from the rankings in DB."""
    if not db.exists():
        raise T2IError("no rankings database", path=db, hint="collect rankings with: t2igan rank serve RUN RUN …")
    rows = RankStore(db).mean_ranks()
    if not rows:
        raise T2IError("the database has no rankings yet", path=db)
    click.echo(format_report(rows))
