"""The allow-listed unpickler bounds sizes before allocating: a tiny pickle cannot make it allocate gigabytes."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from t2igan.apps.cli import main
from t2igan.data.safe_pickle import safe_load, safe_loads
from t2igan.utils.errors import T2IError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]


class _Call:
    """Pickles as ``fn(*args)``: what a crafted file can ask the unpickler to do."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.fn, self.args)


CRAFTED = {
    "bytearray-1.5GB": _Call(bytearray, 1_500_000_000),
    "bytes-1.5GB": _Call(bytes, 1_500_000_000),
    "ndarray-80GB": _Call(np.ndarray, (100_000, 100_000)),
    "reconstruct-80GB": _Call(_reconstruct, np.ndarray, (1_000_000, 10_000), np.dtype("f8")),
    "wide-dtype": _Call(np.ndarray, (4,), np.dtype(("V", 2**30))),
    "many-small": [_Call(bytearray, 60_000) for _ in range(50)],  # each fits the file, together they do not
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
@pytest.mark.parametrize("protocol", [2, 4])
def test_crafted_sizes_refused_before_allocating(name: str, protocol: int) -> None:
    data = pickle.dumps(CRAFTED[name], protocol=protocol)
    assert len(data) < 4000
    tracemalloc.start()
    try:
        with pytest.raises(T2IError, match="refusing to load pickle: it asks for") as e:
            safe_loads(data, "crafted.pickle")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak / 1e6:.0f} MB allocated before refusing"
    assert "\n" not in str(e.value) and "crafted.pickle" in str(e.value)


def test_thirty_byte_stackgan_pickle_is_a_one_line_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The StackGAN layout reads filenames.pickle first: a 30-odd-byte file there asking for 1.5 GB."""
    root = tmp_path / "birds"
    (root / "train").mkdir(parents=True)
    bomb = pickle.dumps(_Call(bytearray, 1_500_000_000), protocol=3)
    assert len(bomb) < 40
    (root / "train" / "filenames.pickle").write_bytes(bomb)
    with pytest.raises(T2IError, match="asks for a bytearray"):
        safe_load(root / "train" / "filenames.pickle")
    tracemalloc.start()
    try:
        with pytest.raises(SystemExit) as e:
            main(["data", "prepare", str(root), "--out", str(tmp_path / "cache")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "\n" not in err
    assert "filenames.pickle" in err and "1,500,000,000 bytes" in err
    assert peak < 50_000_000
    assert not (tmp_path / "cache").exists()


def test_honest_pickles_still_load() -> None:
    """Real data of every kind (arrays of any dtype, object arrays, bytearrays, Python 2 strings) passes."""
    obj = {
        "emb": np.random.default_rng(0).standard_normal((20, 10, 64)).astype(np.float32),
        "ids": np.arange(5, dtype=np.int64),
        "names": np.array(["a", None, "c"], dtype=object),
        "raw": bytearray(b"xyz" * 1000),
        "nested": [np.float64(3.5), {1, 2}, frozenset({"a"}), complex(1, 2)],
        "empty": np.zeros((0, 1024), np.float32),
    }
    for protocol in (2, 3, 4, 5):
        out = safe_loads(pickle.dumps(obj, protocol=protocol))
        assert np.array_equal(out["emb"], obj["emb"]) and out["emb"].dtype == np.float32
        assert list(out["names"]) == ["a", None, "c"] and out["raw"] == obj["raw"]
        assert out["nested"] == obj["nested"] and out["empty"].shape == (0, 1024)


def test_one_array_referenced_many_times_is_refused() -> None:
    """A 1 MB array listed 10,000 times (memo references: 1 MB file) would expand to 10 GB in np.asarray; a chain of
    lists each holding the previous one twice, to 2^60 copies. Both refused at once; cycles and repeated strings are
    fine."""
    import time

    arr = np.zeros(250_000, np.float32)
    chain: list[Any] = [arr]
    for _ in range(60):
        chain = [chain, chain]
    for obj in ([arr] * 10_000, chain):
        data = pickle.dumps(obj, protocol=4)
        assert len(data) < 1_100_000
        start = time.perf_counter()
        with pytest.raises(T2IError, match="repeats its arrays"):
            safe_loads(data, "embeddings.pickle")
        assert time.perf_counter() - start < 2.0
    cycle: list[Any] = [arr]
    cycle.append(cycle)
    assert safe_loads(pickle.dumps(cycle, protocol=4))[1][0].shape == (250_000,)
    labels = [f"class_{i % 3}" for i in range(100_000)]  # shared strings are not data that expands
    assert safe_loads(pickle.dumps(labels, protocol=4)) == labels


def test_read_stackgan_pickle_never_expands_a_shared_array(tmp_path: Path) -> None:
    from t2igan.text.precomputed import read_stackgan_pickle

    path = tmp_path / "char-CNN-RNN-embeddings.pickle"
    path.write_bytes(pickle.dumps([np.zeros((10, 1024), np.float32)] * 5000, protocol=2))  # 40 KB → 200 MB
    tracemalloc.start()
    try:
        with pytest.raises(T2IError, match="repeats its arrays"):
            read_stackgan_pickle(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000
