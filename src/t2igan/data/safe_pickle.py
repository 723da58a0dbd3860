"""Load pickles from the internet without running their code.

StackGAN ships ``filenames.pickle``, ``class_info.pickle`` and ``char-CNN-RNN-embeddings.pickle`` (often Python 2
pickles). A plain ``pickle.load`` executes whatever callables the file names (``os.system`` …). `safe_load` uses an
allow-listed Unpickler: plain containers, str/bytes, numbers and numpy arrays only; anything else is refused with a
`T2IError` naming the file. Python 2 pickles are read with ``encoding="latin1"`` (numpy's own advice).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from t2igan.utils.errors import T2IError

# (module, name) pairs a data pickle may reference. Builtin containers/numbers need no global at all.
_ALLOWED: set[tuple[str, str]] = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # Python 2 str→bytes round-trips made by numpy arrays
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: Path, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            if module == "__builtin__":
                module = "builtins"
            if module.startswith("numpy"):
                return _numpy_global(module, name)
            return super().find_class(module, name)
        raise T2IError(
            f"refusing to load pickle: it references {module}.{name}, which is not plain data",
            path=self._path,
            hint="only containers, strings, numbers and numpy arrays are allowed; re-export the file as .npy/JSON "
            "if you trust it",
        )

    def persistent_load(self, pid: Any) -> Any:
        raise T2IError(
            "refusing to load pickle with persistent ids", path=self._path, hint="this is not a plain data pickle"
        )


def _numpy_global(module: str, name: str) -> Any:
    import numpy as np

    if name in ("ndarray", "dtype"):
        return getattr(np, name)
    try:  # numpy 2 moved numpy.core → numpy._core; accept either spelling in the file
        import numpy._core.multiarray as mod
        import numpy._core.numeric as num
    except ImportError:  # pragma: no cover - numpy 1.x
        import numpy.core.multiarray as mod  # type: ignore[no-redef]
        import numpy.core.numeric as num  # type: ignore[no-redef]
    return getattr(num if module.endswith("numeric") else mod, name)


def safe_loads(data: bytes, path: str | Path = "<bytes>") -> Any:
    """Unpickle ``data`` allowing only plain data (see module docstring)."""
    path = Path(path)
    try:
        return _SafeUnpickler(io.BytesIO(data), path, encoding="latin1").load()
    except T2IError:
        raise
    except Exception as e:  # truncated / not a pickle
        raise T2IError(
            f"cannot read pickle ({type(e).__name__}: {e})",
            path=path,
            hint="the file is damaged or not a pickle; download it again",
        ) from None


def safe_load(path: str | Path) -> Any:
    """Read a data pickle file safely; Python 2 pickles are decoded with latin1."""
    path = Path(path)
    if not path.is_file():
        raise T2IError("file not found", path=path, hint="check the dataset folder layout (docs/datasets.md)")
    return safe_loads(path.read_bytes(), path)
