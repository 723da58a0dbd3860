"""The human-ranking app through FastAPI's TestClient (no browser)."""

import pytest
import torch
from fastapi.testclient import TestClient

from t2igan.apps.cli import main
from t2igan.apps.rank import RankStore, create_app, format_report


def _gen(value: float):
    return lambda captions, seeds: torch.full((len(captions), 3, 8, 8), value)


def test_rank_round_trip(tmp_path):
    store = RankStore(tmp_path / "r.sqlite")
    app = create_app({"good": _gen(0.5), "bad": _gen(-0.5)}, ["a red flower", "a blue flower"], store, seed=0)
    client = TestClient(app)
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
