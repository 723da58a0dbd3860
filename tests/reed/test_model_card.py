"""Model cards: the README.md every export and `save_pretrained` writes (Hub-style front matter, usage, data, metrics,
samples, config), and no absolute path in a pretrained folder."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from t2igan.sampling import T2IPipeline
from t2igan.training.export import ModelCard
from t2igan.training.trainer import Trainer


def _front_matter(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def _no_absolute_paths(folder: Path, *roots: Path) -> None:
    for p in folder.rglob("*"):
        if p.suffix in (".json", ".md", ".yaml"):
            text = p.read_text(encoding="utf-8")
            for root in roots:
                assert str(root) not in text, f"{p} holds {root}"


def test_training_export_writes_a_card_with_config_samples_and_no_absolute_paths(tiny_config, fake_dataset, tmp_path):
    cfg = tiny_config("train.sample_every=2", "data.text_encoder=null", run="my_run")
    Trainer(cfg, fake_dataset).fit()
    pre = Path(cfg.run_dir) / "pretrained"
    front, body = _front_matter(pre / "README.md")
    assert front["library_name"] == "t2igan" and front["pipeline_tag"] == "text-to-image"
    assert {"t2igan", "gan", "text-to-image", "gan-int-cls"} <= set(front["tags"])
    assert body.lstrip().startswith("# my_run")  # the run's name, not "pretrained"
    assert "| model family | reed |" in body and "| training steps | 4 |" in body and "| seed | 0 |" in body
    assert "## How it was trained" in body and "variant: gan-int-cls" in body and "run_dir: my_run" in body
    assert (pre / "samples.png").is_file() and "![samples](samples.png)" in body  # the newest grid of samples/
    _no_absolute_paths(pre, tmp_path)
    index = json.loads((pre / "model_index.json").read_text())
    assert index["model"] == "reed" and index["step"] == 4


def test_save_pretrained_card_with_metrics_datasets_and_provenance(tiny_config, fake_dataset, tmp_path):
    cfg = tiny_config(run="r")
    Trainer(cfg, fake_dataset).fit()
    pipe = T2IPipeline.from_pretrained(cfg.run_dir)
    metrics = {"attr_acc_500_test-eval_64px": {"seen": 0.61, "unseen": 0.58}, "fid_evaluator_500_test_64px": 101.5}
    card = ModelCard(
        name="flowers-test",
        description="A test model.",
        datasets=["synthetic-flowers"],
        tags=["flowers"],
        metrics=metrics,
        load_as="flowers-test",
        sections={"Reproduce": "python scripts/train_shipped_model.py"},
    )
    out = pipe.save_pretrained(tmp_path / "saved", card=card)
    front, body = _front_matter(out / "README.md")
    assert front["datasets"] == ["synthetic-flowers"] and "flowers" in front["tags"]
    assert front["metrics"] == sorted(metrics)
    results = front["model-index"][0]["results"][0]
    assert front["model-index"][0]["name"] == "flowers-test" and results["task"]["type"] == "text-to-image"
    assert {(m["type"], m["value"]) for m in results["metrics"]} == {
        ("attr_acc_500_test-eval_64px", 0.61), ("attr_acc_500_test-eval_64px", 0.58),
        ("fid_evaluator_500_test_64px", 101.5),
    }  # fmt: skip
    assert "| `attr_acc_500_test-eval_64px` | seen 0.61, unseen 0.58 |" in body
    assert 'T2IPipeline.from_pretrained("flowers-test")' in body and "## Reproduce" in body
    assert "A test model." in body
    # the provenance of the folder it was loaded from is kept
    index = json.loads((out / "model_index.json").read_text())
    assert index["model"] == "reed" and index["step"] == 4 and index["variant"] == "gan-int-cls"
    assert "| training steps | 4 |" in body
    _no_absolute_paths(out, tmp_path)
    # a plain save_pretrained still writes a card, named after the folder
    plain = pipe.save_pretrained(tmp_path / "plain")
    front, body = _front_matter(plain / "README.md")
    assert front["library_name"] == "t2igan" and "metrics" not in front and body.lstrip().startswith("# plain")
