"""`TextImageDataset`: (image, matching text, mismatching text, class) samples for GAN-INT-CLS / StackGAN training.

Every random choice (flip, which captions are averaged, which mismatching image) is a pure function of
``(seed, epoch, index, purpose)`` computed with a vectorised counter-based hash (SplitMix64), so a batch is the same
whatever else is in it, whichever worker builds it, and after a resume.

Following Reed et al. (2016, §5), the matching text embedding is the mean of ``k_avg`` (default 4) embeddings of
distinct captions of the image. The mismatching embedding is the same kind of average over captions of one image of
a *different class* (so the discriminator cannot tell real from wrong text by its norm).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from t2igan.data.cache import PreparedCache
from t2igan.utils.errors import T2IError

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hash_uniform(seed: int, epoch: int, index: np.ndarray, stream: int, width: int = 1) -> np.ndarray:
    """Uniform floats in [0, 1) of shape ``[len(index), width]``, a pure function of all arguments."""
    with np.errstate(over="ignore"):
        base = _splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ _splitmix64(np.uint64(epoch & 0xFFFFFFFF)))
        base = _splitmix64(base ^ np.uint64(stream))
        x = _splitmix64(base ^ (np.asarray(index, dtype=np.uint64)[:, None] * np.uint64(0xD6E8FEB86659FD93)))
        x = _splitmix64(x + np.arange(width, dtype=np.uint64)[None, :])
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class TextImageDataset:
    """Samples of one split of a `PreparedCache` (see module docstring).

    Args:
        cache: a `PreparedCache` (or its folder).
        size: image resolution (must be one of ``cache.sizes``).
        split: ``"train"``, ``"test"`` or ``"all"``.
        embeddings: key of stored caption embeddings; ``None`` serves raw captions instead (text-encoder training).
        k_avg: number of distinct captions whose embeddings are averaged (fewer if an image has fewer).
        flip: random horizontal flips.
        seed: the data seed; with ``epoch`` and the index it fixes every random choice.
    """

    def __init__(
        self,
        cache: PreparedCache | str,
        size: int = 64,
        split: str = "train",
        embeddings: str | None = None,
        k_avg: int = 4,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        self.cache = cache if isinstance(cache, PreparedCache) else PreparedCache.open(cache)
        if split not in ("train", "test", "all"):
            raise T2IError(f"unknown split {split!r}", hint="use train, test or all")
        if k_avg < 1:
            raise ValueError("k_avg must be ≥ 1")
        self.size, self.split, self.k_avg, self.flip, self.seed = size, split, k_avg, flip, seed
        self.key = embeddings
        self.images = self.cache.images(size)
        self.indices = {
            "train": self.cache.train_indices(),
            "test": self.cache.test_indices(),
            "all": np.arange(self.cache.n, dtype=np.int64),
        }[split]
        if len(self.indices) == 0:
            raise T2IError(
                f"the {split} split of the cache is empty",
                path=self.cache.root,
                hint="check trainvalclasses.txt / testclasses.txt of the source",
            )
        self.emb = self.cache.embeddings(embeddings) if embeddings is not None else None
        self.offsets = self.cache.caption_offsets
        self.counts = np.diff(self.offsets)
        self.max_caps = int(self.counts.max())
        # Images of the split sorted by class: a "different class" draw skips the block of the own class.
        cls = self.cache.class_ids[self.indices]
        order = np.argsort(cls, kind="stable")
        self._by_class = self.indices[order]
        sorted_cls = cls[order]
        uniq, first, counts = np.unique(sorted_cls, return_index=True, return_counts=True)
        n_cls = int(self.cache.class_ids.max()) + 1
        self._class_start = np.zeros(n_cls, dtype=np.int64)  # class id → first position in _by_class
        self._class_count = np.zeros(n_cls, dtype=np.int64)  # class id → images of that class in the split
        self._class_start[uniq], self._class_count[uniq] = first, counts
        self._single_class = len(uniq) < 2
        if self._single_class:
            warnings.warn(f"the {split} split has one class: mismatching captions come from other images", stacklevel=2)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def text_dim(self) -> int | None:
        return None if self.emb is None else int(self.emb.shape[1])

    # --- random choices -----------------------------------------------------------------------------------------
    def _pick_captions(self, image_idx: np.ndarray, epoch: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat caption indices ``[B, k]`` of k_avg distinct captions per image and a validity mask."""
        keys = hash_uniform(self.seed, epoch, image_idx, stream, self.max_caps)
        counts = self.counts[image_idx]
        keys[np.arange(self.max_caps)[None, :] >= counts[:, None]] = 2.0  # slots beyond the image's captions
        k = min(self.k_avg, self.max_caps)
        local = np.argsort(keys, axis=1, kind="stable")[:, :k]
        valid = np.arange(k)[None, :] < counts[:, None]
        return self.offsets[image_idx][:, None] + local, valid

    def _pick_wrong(self, image_idx: np.ndarray, epoch: int) -> np.ndarray:
        u = hash_uniform(self.seed, epoch, image_idx, 3)[:, 0]
        n = len(self._by_class)
        if self._single_class:
            own = np.searchsorted(self._by_class, image_idx)  # _by_class is ascending here
            r = np.minimum((u * max(n - 1, 1)).astype(np.int64), max(n - 2, 0))
            return self._by_class[np.where(r >= own, np.minimum(r + 1, n - 1), r)]
        cls = self.cache.class_ids[image_idx]
        start, count = self._class_start[cls], self._class_count[cls]
        r = np.minimum((u * (n - count)).astype(np.int64), n - count - 1)
        return self._by_class[np.where(r >= start, r + count, r)]

    def _average(self, flat_idx: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        assert self.emb is not None
        order = np.argsort(flat_idx.ravel())  # memmap reads in ascending order
        rows = np.empty((flat_idx.size, self.emb.shape[1]), dtype=np.float32)
        rows[order] = self.emb[flat_idx.ravel()[order]]
        rows = rows.reshape(*flat_idx.shape, -1)
        w = valid.astype(np.float32)[..., None]
        return torch.from_numpy((rows * w).sum(1) / w.sum(1))

    # --- batches ------------------------------------------------------------------------------------------------
    def batch(self, indices: np.ndarray | list[int], epoch: int = 0) -> dict[str, Any]:
        """Samples at positions ``indices`` (0 ≤ i < len(self)) of the split, for ``epoch``; see the contract."""
        pos = np.asarray(indices, dtype=np.int64).reshape(-1)
        if pos.size and (pos.min() < 0 or pos.max() >= len(self)):
            raise IndexError(f"index out of range for a split of {len(self)} images")
        image_idx = self.indices[pos]
        order = np.argsort(image_idx, kind="stable")
        imgs = np.empty((len(pos), self.size, self.size, 3), dtype=np.uint8)
        imgs[order] = self.images[image_idx[order]]
        if self.flip:
            flip = hash_uniform(self.seed, epoch, image_idx, 1)[:, 0] < 0.5
            imgs[flip] = imgs[flip, :, ::-1]
        # uint8 NHWC → float NCHW in [-1, 1] in numpy (no torch threads: fast even on a busy machine).
        chw = np.empty((len(pos), 3, self.size, self.size), dtype=np.float32)
        np.multiply(imgs.transpose(0, 3, 1, 2), np.float32(1 / 127.5), out=chw, dtype=np.float32)
        chw -= 1.0
        image = torch.from_numpy(chw)
        cap_idx, valid = self._pick_captions(image_idx, epoch, 2)
        wrong_idx = self._pick_wrong(image_idx, epoch)
        wrong_cap, wrong_valid = self._pick_captions(wrong_idx, epoch, 4)
        out: dict[str, Any] = {
            "image": image,
            "class_id": torch.from_numpy(self.cache.class_ids[image_idx].copy()),
            "index": torch.from_numpy(image_idx.copy()),
            "caption_idx": torch.from_numpy(cap_idx[:, 0].copy()),
            "wrong_index": torch.from_numpy(wrong_idx.copy()),
            "wrong_caption_idx": torch.from_numpy(wrong_cap[:, 0].copy()),
        }
        if self.emb is not None:
            out["text_emb"] = self._average(cap_idx, valid)
            out["wrong_emb"] = self._average(wrong_cap, wrong_valid)
        else:
            flat = self.cache.flat_captions
            out["caption"] = [flat[int(i)] for i in cap_idx[:, 0]]
            out["wrong_caption"] = [flat[int(i)] for i in wrong_cap[:, 0]]
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        b = self.batch(np.array([i]), epoch=0)
        return {k: v[0] for k, v in b.items()}

    def epoch_order(self, epoch: int) -> np.ndarray:
        """A permutation of ``range(len(self))`` fixed by ``(seed, epoch)`` — the training data order."""
        return np.argsort(hash_uniform(self.seed, epoch, np.arange(len(self)), 5)[:, 0], kind="stable")
