"""Shared test set-up: one torch thread per xdist worker, offline hubs, and small shared fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


# --- data fixtures (issue 2) -------------------------------------------------------------------------------------
import pytest


@pytest.fixture(scope="session")
def tiny_synth_dir(tmp_path_factory):
    """A synthetic-flowers dataset on disk in Reed's Oxford-102 layout: 60 images, 32 px, seed 0.

    ``images/image_000NN.png``, ``text_c10/class_000CC/image_000NN.txt`` (10 captions), ``allclasses.txt``,
    ``trainvalclasses.txt`` / ``testclasses.txt`` (82 / 20 classes; the 60 images cover both splits) and
    ``attributes.json``. Read-only: copy it before modifying.
    """
    from t2igan.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("synth") / "flowers", n=60, size=32, seed=0)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """A `PreparedCache` of 120 synthetic flowers at sizes 16 and 32 (every one of the 102 classes, both splits).

    Attributes are present (petal_colour, centre_colour, petal_shape, petal_count); 10 captions per image. It already
    holds oracle caption embeddings under key ``"attributes-onehot"`` (21-d one-hot attribute codes, see
    `t2igan.data.oracle_text`) so model/training tests can run without a text encoder::

        ds = TextImageDataset(tiny_cache, size=16, embeddings="attributes-onehot")

    Session-scoped and shared: save embeddings under your own key, never overwrite existing ones.
    """
    from t2igan.data.cache import PreparedCache
    from t2igan.data.oracle_text import save_attribute_onehot
    from t2igan.data.synthetic import synthesize_cache

    cache = PreparedCache.open(synthesize_cache(tmp_path_factory.mktemp("cache") / "tiny", n=120, sizes=(16, 32)))
    save_attribute_onehot(cache)
    return cache


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("name")``: the module ``benchmarks/name.py`` (the scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
