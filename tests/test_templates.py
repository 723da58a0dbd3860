"""The HTML pages are Jinja2 templates shipped as package data: they render from the source tree, and a wheel built
from the project carries them (rendered from the unpacked wheel, found through `importlib.resources`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest

from t2igan.utils.templates import render

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {"t2igan.apps": ["demo_index.html", "rank.html"], "t2igan.metrics": ["comparison.html"]}
CONTEXT = {
    "demo_index.html": {"intro": "i", "summary": {"steps": 3}, "figures": [], "command": "c", "run": "r"},
    "rank.html": {},
    "comparison.html": {"metrics": [], "runs": [], "charts": []},
}


def test_every_template_is_package_data_and_escapes() -> None:
    for package, names in TEMPLATES.items():
        folder = files(package) / "templates"
        assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".html")) == sorted(names)
        for name in names:
            assert render(package, name, **CONTEXT[name]).startswith("<!doctype html>")
    page = render("t2igan.apps", "demo_index.html", **{**CONTEXT["demo_index.html"], "intro": "<script>x</script>"})
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    with pytest.raises(Exception, match="undefined"):  # a missing value is an error, not an empty string
        render("t2igan.apps", "demo_index.html")


@pytest.mark.slow
def test_a_built_wheel_carries_and_finds_the_templates(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("t2igan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, templates in TEMPLATES.items():
        folder = package.replace(".", "/") + "/templates/"
        assert {folder + t for t in templates} <= names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    script = (
        "import t2igan, sys; from t2igan.utils.templates import render; "
        f"assert t2igan.__file__.startswith({str(unpacked)!r}), t2igan.__file__; "
        "print(len(render('t2igan.apps', 'rank.html')), "
        "len(render('t2igan.metrics', 'comparison.html', metrics=[], runs=[], charts=[])))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], env={"PYTHONPATH": str(unpacked)}, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert all(int(n) > 500 for n in run.stdout.split())
