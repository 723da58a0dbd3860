"""The human-ranking app through FastAPI's TestClient (no browser)."""

import pytest
import torch
from fastapi.testclient import TestClient

from t2igan.apps.cli import main
from t2igan.apps.rank import RankStore, create_app, format_report
from t2igan.utils.errors import T2IError


def _gen(value: float):
    return lambda captions, seeds: torch.full((len(captions), 3, 8, 8), value)


def test_rank_round_trip(tmp_path):
    store = RankStore(tmp_path / "r.sqlite")
    app = create_app({"good": _gen(0.5), "bad": _gen(-0.5)}, ["a red flower", "a blue flower"], store, seed=0)
    client = TestClient(app, base_url="http://127.0.0.1")
    assert "rank" in client.get("/").text
    for _ in range(3):
        t = client.get("/api/trial").json()
        assert len(t["images"]) == 2 and t["images"][0].startswith("data:image/png;base64,")
        runs = store.slots(t["trial_id"])
        ranks = [1 if r == "good" else 2 for r in runs]  # the user always prefers "good"
        assert client.post("/api/rank", json={"trial_id": t["trial_id"], "ranks": ranks}).status_code == 200
    bad = client.post("/api/rank", json={"trial_id": t["trial_id"], "ranks": [1, 1]})
    assert bad.status_code == 422
    assert client.post("/api/rank", json={"trial_id": "nope", "ranks": [1, 2]}).status_code == 404
    rows = client.get("/api/report").json()
    assert [r["run"] for r in rows] == ["good", "bad"] and rows[0]["mean_rank"] == 1.0 and rows[0]["n"] == 3
    assert "| good | 1.00 |" in format_report(rows)


def test_rank_report_cli(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    with pytest.raises(SystemExit) as e:
        main(["rank", "report", "--db", str(db)])
    assert e.value.code == 2 and "no rankings database" in capsys.readouterr().err
    s = RankStore(db)
    s.add_ranking(s.add_trial("c", 0, ["a", "b"]), {"a": 2, "b": 1})
    main(["rank", "report", "--db", str(db)])
    assert "| b | 1.00 |" in capsys.readouterr().out


def test_rank_db_that_is_not_sqlite_or_foreign(tmp_path, capsys):
    """A text file, a directory, or another program's SQLite database: one line, nothing written into it."""
    import sqlite3

    text = tmp_path / "notes.sqlite"
    text.write_text("my notes, not a database\n" * 100)
    before = text.read_bytes()
    with pytest.raises(SystemExit) as e:
        main(["rank", "report", "--db", str(text)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "\n" not in err
    assert "notes.sqlite" in err and "not an SQLite database" in err
    assert text.read_bytes() == before

    with pytest.raises(T2IError, match="not a regular file"):
        RankStore(tmp_path)

    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(T2IError, match="something else") as exc:
        RankStore(other)
    assert "other.sqlite" in str(exc.value)
    con = sqlite3.connect(other)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["photos"]  # untouched
    con.close()


def test_rank_db_locked_by_another_program(tmp_path, capsys, monkeypatch):
    import sqlite3

    import t2igan.apps.rank as rank_mod

    db = tmp_path / "r.sqlite"
    store = RankStore(db)
    store.add_ranking(store.add_trial("c", 0, ["a", "b"]), {"a": 2, "b": 1})
    store.db.close()
    other = sqlite3.connect(db)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the database
    monkeypatch.setattr(rank_mod, "DB_TIMEOUT_S", 0.2)
    try:
        with pytest.raises(SystemExit) as e:
            main(["rank", "report", "--db", str(db)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and "\n" not in err and "r.sqlite" in err and "locked" in err
    finally:
        other.rollback()
        other.close()
    main(["rank", "report", "--db", str(db)])  # released: works again
    assert "| b | 1.00 |" in capsys.readouterr().out


def test_rank_page_reports_a_locked_db_and_keeps_serving(tmp_path):
    import sqlite3

    store = RankStore(tmp_path / "r.sqlite", timeout=0.2)
    app = create_app({"good": _gen(0.5), "bad": _gen(-0.5)}, ["a red flower"], store, seed=0)
    client = TestClient(app, base_url="http://127.0.0.1")
    other = sqlite3.connect(tmp_path / "r.sqlite")
    other.execute("BEGIN EXCLUSIVE")
    r = client.get("/api/trial")
    assert r.status_code == 503 and "locked" in r.json()["detail"]
    other.rollback()
    other.close()
    assert client.get("/api/trial").status_code == 200


def test_rank_page_refuses_other_sites(tmp_path):
    store = RankStore(tmp_path / "r.sqlite")
    app = create_app({"good": _gen(0.5), "bad": _gen(-0.5)}, ["a red flower"], store, seed=0, port=8766)
    client = TestClient(app, base_url="http://127.0.0.1:8766")
    t = client.get("/api/trial").json()
    body = {"trial_id": t["trial_id"], "ranks": [1, 2]}
    assert client.post("/api/rank", json=body, headers={"origin": "http://evil.example"}).status_code == 403
    assert client.get("/api/report", headers={"host": "evil.example:8766"}).status_code == 403
    plain = client.post(
        "/api/rank", content=b'{"trial_id": "x", "ranks": [1, 2]}', headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    assert store.count() == 0
    assert client.post("/api/rank", json=body, headers={"origin": "http://127.0.0.1:8766"}).status_code == 200
