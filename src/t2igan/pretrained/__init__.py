"""Models shipped inside the package (≤ 20 MB each): a name → a pretrained folder in ``t2igan/pretrained/``.

    T2IPipeline.from_pretrained("flowers-64")      # the shipped model (a path that exists is always preferred)
    t2igan sample "this flower has five pink petals and a yellow center" --out pink.png   # DEFAULT_MODEL

Each folder is a pretrained folder (``model_index.json``, ``generator/``, ``text_encoder/``, ``README.md`` with the
model card and its measured figures, ``samples.png``) written by ``scripts/train_shipped_model.py``, which reproduces
it from scratch. The wheel includes them as package data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from t2igan.utils.errors import T2IError

# shipped name → folder inside this package
SHIPPED: dict[str, str] = {
    "flowers-64": "flowers-64",  # GAN-INT-CLS (reed_cpu) + char-CNN-RNN on the synthetic flowers, 64 px
}
DEFAULT_MODEL = "flowers-64"
MAX_SHIPPED_MB = 20


def shipped_names() -> list[str]:
    return sorted(SHIPPED)


def is_shipped_name(name: str | Path) -> bool:
    return str(name) in SHIPPED


def shipped_folder(name: str) -> Path:
    """The folder of the shipped model ``name`` (a one-line error when it is unknown or not installed)."""
    if name not in SHIPPED:
        raise T2IError(
            f"no such model folder or shipped model {name!r}",
            hint=f"shipped models: {', '.join(shipped_names())}; or pass a run / pretrained folder",
        )
    folder = Path(str(resources.files(__name__) / SHIPPED[name]))
    if not (folder / "model_index.json").is_file():
        raise T2IError(
            f"the shipped model {name!r} is not in this installation",
            path=folder,
            hint="reinstall t2igan, or rebuild it with scripts/train_shipped_model.py",
        )
    return folder


__all__ = ["DEFAULT_MODEL", "MAX_SHIPPED_MB", "SHIPPED", "is_shipped_name", "shipped_folder", "shipped_names"]
