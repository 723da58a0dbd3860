"""Load pickles from the internet without running their code.

StackGAN ships ``filenames.pickle``, ``class_info.pickle`` and ``char-CNN-RNN-embeddings.pickle`` (often Python 2
pickles). A plain ``pickle.load`` executes whatever callables the file names (``os.system`` …). `safe_load` uses an
allow-listed Unpickler: plain containers, str/bytes, numbers and numpy arrays only; anything else is refused with a
`T2IError` naming the file. Python 2 pickles are read with ``encoding="latin1"`` (numpy's own advice).

Sizes are bounded before anything is allocated: the allowed callables that allocate by themselves (``bytearray(n)``,
``numpy.ndarray(shape, dtype)``, numpy's ``_reconstruct``) may together allocate no more bytes than the file holds
(plus a small slack) — an honest data pickle carries its data, so a 30-byte file asking for 1.5 GB is refused. And
an array listed many times (memo references cost a few bytes each) is refused after loading, before a caller's
``np.asarray`` would expand it (`expanded_bytes`).
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
    ("builtins", "bytes"),  # Python 3 writes b"" as bytes() under protocol 2
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("__builtin__", "complex"),
    ("__builtin__", "bytearray"),
    ("__builtin__", "bytes"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # Python 2 str→bytes round-trips made by numpy arrays
}


SLACK_BYTES = 64 * 1024  # allocations allowed beyond the file's own size (empty arrays, small headers)
_LATIN1 = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: Path, size: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._path = path
        self._budget = size + SLACK_BYTES  # bytes the allocating callables may still ask for

    def _spend(self, nbytes: int, what: str) -> None:
        if nbytes > self._budget:
            raise T2IError(
                f"refusing to load pickle: it asks for {what} ({nbytes:,} bytes) but the file holds only its own bytes",
                path=self._path,
                hint="a data pickle carries its data; this one is damaged or crafted",
            )
        self._budget -= nbytes

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            if module == "__builtin__":
                module = "builtins"
            if module == "builtins" and name in ("bytearray", "bytes"):
                return self._bytearray if name == "bytearray" else self._bytes
            if (module, name) == ("_codecs", "encode"):
                return self._encode
            if module.startswith("numpy"):
                real = _numpy_global(module, name)
                if name == "ndarray":
                    return _NdarrayProxy(self)
                if name == "_reconstruct":
                    return lambda subtype, shape, dtype: self._reconstruct(real, subtype, shape, dtype)
                return real
            return super().find_class(module, name)
        raise T2IError(
            f"refusing to load pickle: it references {module}.{name}, which is not plain data",
            path=self._path,
            hint="only containers, strings, numbers and numpy arrays are allowed; re-export the file as .npy/JSON "
            "if you trust it",
        )

    # -- allocating callables, checked against the budget before they run ------------------------------------
    def _check_buffer(self, source: Any, kind: str) -> None:
        if isinstance(source, int) and not isinstance(source, bool):
            self._spend(max(source, 0), f"a {kind}")
        elif isinstance(source, (str, bytes, bytearray)):
            self._spend(len(source), f"a {kind}")
        else:
            raise T2IError(f"refusing to load pickle: {kind} of an unexpected kind", path=self._path)

    def _bytearray(self, source: Any = b"", *args: Any) -> bytearray:
        self._check_buffer(source, "bytearray")
        return bytearray(source, *args)

    def _bytes(self, source: Any = b"", *args: Any) -> bytes:
        self._check_buffer(source, "bytes object")
        return bytes(source, *args)

    def _encode(self, obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if not isinstance(obj, str) or str(encoding).lower() not in _LATIN1:
            raise T2IError("refusing to load pickle: unexpected text encoding call", path=self._path)
        return obj.encode("latin1", errors)

    def _array_bytes(self, shape: Any, dtype: Any) -> int:
        import numpy as np

        if isinstance(dtype, bytes):  # numpy writes a placeholder type code (b"b") here
            dtype = dtype.decode("latin1")
        try:
            dims = (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)
            itemsize = np.dtype(dtype).itemsize if dtype is not None else 8
        except (TypeError, ValueError, OverflowError):
            raise T2IError("refusing to load pickle: bad array shape or dtype", path=self._path) from None
        if any(d < 0 for d in dims):
            raise T2IError("refusing to load pickle: negative array dimension", path=self._path)
        n = 1
        for d in dims:
            n *= d  # Python ints: no overflow
        return n * max(itemsize, 1)

    def _ndarray(self, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        self._spend(self._array_bytes(shape, dtype), f"an array of shape {shape}")
        return np.ndarray(shape, dtype, *args, **kwargs)

    def _reconstruct(self, real: Any, subtype: Any, shape: Any, dtype: Any) -> Any:
        import numpy as np

        if not isinstance(subtype, _NdarrayProxy) and subtype is not np.ndarray:
            raise T2IError("refusing to load pickle: array of an unexpected type", path=self._path)
        self._spend(self._array_bytes(shape, dtype), f"an array of shape {shape}")
        return real(np.ndarray, shape, dtype)

    def persistent_load(self, pid: Any) -> Any:
        raise T2IError(
            "refusing to load pickle with persistent ids", path=self._path, hint="this is not a plain data pickle"
        )


class _NdarrayProxy:
    """``numpy.ndarray`` as a pickle sees it: called, it checks the size first; passed to ``_reconstruct``, it
    stands for the real class."""

    def __init__(self, owner: _SafeUnpickler) -> None:
        self._owner = owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner._ndarray(*args, **kwargs)


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


def expanded_bytes(root: Any, limit: int) -> int:
    """Bytes of array/bytes data reachable from ``root``, counting an object once per reference to it — what
    ``np.asarray(root)`` or a deep copy would allocate. Linear in the number of distinct objects (shared parts are
    sized once, cycles count 0); raises ``OverflowError`` as soon as the total passes ``limit``."""
    import numpy as np

    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        obj, children_done = stack.pop()
        key = id(obj)
        if key in sizes and not children_done:
            continue
        if isinstance(obj, np.ndarray) and obj.dtype != object:
            sizes[key] = obj.nbytes
            continue
        if isinstance(obj, (bytes, bytearray)):
            sizes[key] = len(obj)
            continue
        if isinstance(obj, dict):
            kids = [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            kids = list(obj)
        elif isinstance(obj, np.ndarray):  # object arrays
            kids = list(obj.flat)
        else:
            sizes[key] = 0  # str, numbers, None: not what expands
            continue
        if not children_done:
            sizes[key] = 0  # in progress: a cycle back to it counts 0
            stack.append((obj, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
        else:
            total = sum(sizes.get(id(k), 0) for k in kids)
            if total > limit:
                raise OverflowError(total)
            sizes[key] = total
    return sizes[id(root)]


def safe_loads(data: bytes, path: str | Path = "<bytes>") -> Any:
    """Unpickle ``data`` allowing only plain data (see module docstring).

    After loading, the array data reachable from the result — each shared array counted once per reference, as
    ``np.asarray`` would copy it — must not exceed twice the file's size (+ 1 MB): a small file listing one array a
    million times is refused here, before a caller expands it.
    """
    path = Path(path)
    try:
        obj = _SafeUnpickler(io.BytesIO(data), path, len(data), encoding="latin1").load()
    except T2IError:
        raise
    except Exception as e:  # truncated / not a pickle
        raise T2IError(
            f"cannot read pickle ({type(e).__name__}: {e})",
            path=path,
            hint="the file is damaged or not a pickle; download it again",
        ) from None
    try:
        expanded_bytes(obj, 2 * len(data) + (1 << 20))
    except OverflowError as e:
        raise T2IError(
            f"refusing to load pickle: it repeats its arrays until they hold at least {e.args[0]:,} bytes, far more "
            "than the file",
            path=path,
            hint="a data pickle stores each array once; this one is damaged or crafted",
        ) from None
    return obj


def safe_load(path: str | Path) -> Any:
    """Read a data pickle file safely; Python 2 pickles are decoded with latin1."""
    path = Path(path)
    if not path.is_file():
        raise T2IError("file not found", path=path, hint="check the dataset folder layout (docs/datasets.md)")
    return safe_loads(path.read_bytes(), path)
