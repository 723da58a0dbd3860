"""What every metric shares: the prompts, the generated samples, feature networks and cached real features.

An :class:`EvalContext` is built once per evaluated model. Prompts and seeds are deterministic in ``(seed, split,
i)``, samples are generated once (in batches, with a progress bar) and shared by all metrics, and features of real
images are cached on disk under a fingerprint of everything that affects them (dataset, network weights, image size,
resize protocol, split), written atomically — StyleGAN2-ADA's habit.

Resize protocol (part of every protocol name, as clean-fid insists): images whose size differs from the feature
network's input are resized with PIL bicubic on uint8 (``bicubic``); none at equal size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from t2igan.data.cache import PreparedCache
from t2igan.utils.images import make_grid, save_image, to_uint8
from t2igan.utils.io import atomic_path, fingerprint
from t2igan.utils.progress import progress_bar
from t2igan.utils.seed import derive_seed

# generate(captions, seeds) → images [N, 3, H, W] in [-1, 1] (tensor) or uint8 [N, H, W, 3]
GenerateFn = Callable[[list[str], list[int]], "torch.Tensor | np.ndarray"]
RESIZE = "bicubic"
SUBSETS = ("eval", "val", "all")
VAL_EVERY = 10  # 1 image in 10 of each split is the validation subset (training-time evaluation, model selection)


@dataclass
class Prompts:
    image_ids: np.ndarray  # [n] dataset image each caption belongs to
    caption_ids: np.ndarray  # [n] flat caption index
    captions: list[str]
    class_ids: np.ndarray  # [n]
    seeds: list[int]


@dataclass
class FeatureNet:
    name: str
    size: int
    features: Callable[[torch.Tensor], torch.Tensor]
    probs: Callable[[torch.Tensor], torch.Tensor] | None
    fingerprint: str


def n_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` → ``[N, size, size, 3]`` with PIL bicubic (no-op at equal size)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])


class EvalContext:
    def __init__(
        self,
        cache: PreparedCache,
        generate: GenerateFn | None,
        *,
        n: int = 2000,
        seed: int = 0,
        batch: int = 64,
        evaluator: Any = None,
        sje: tuple[Any, Any] | None = None,
        inception: Any = None,
        discriminator_features: Callable[[np.ndarray], np.ndarray] | None = None,
        out_dir: str | Path | None = None,
        feature_cache_dir: str | Path | None = None,
        progress: bool = True,
        subset: str = "eval",
    ) -> None:
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        self.subset = subset
        self.cache, self.generate, self.n, self.seed, self.batch = cache, generate, n, seed, batch
        self.evaluator, self.sje, self.inception = evaluator, sje, inception
        self.discriminator_features = discriminator_features
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.feature_cache_dir = Path(feature_cache_dir) if feature_cache_dir else Path(cache.root) / "metrics"
        self.progress = progress
        self._prompts: dict[str, Prompts] = {}
        self._samples: dict[str, np.ndarray] = {}
        self._fake: dict[tuple[str, str, str], np.ndarray] = {}
        self._same_caption: dict[tuple[int, int], tuple[list[str], np.ndarray, np.ndarray]] = {}

    # -- prompts and samples ---------------------------------------------------------------------------------------
    def derived_seed(self, purpose: str, *parts: Any) -> int:
        return derive_seed(self.seed, purpose, *parts) % 2**31

    def pool(self, split: str) -> np.ndarray:
        """Image indices of ``split`` in this context's subset: ``val`` = every image whose index is a multiple of
        ``VAL_EVERY`` (what training-time evaluation selects checkpoints on), ``eval`` = the others (what reported
        figures use, so a selected model is never scored on the images it was selected with)."""
        idx = np.asarray(self.cache.train_indices() if split == "train" else self.cache.test_indices())
        if self.subset == "all":
            return idx
        val = idx % VAL_EVERY == 0
        return idx[val] if self.subset == "val" else idx[~val]

    def prompts(self, split: str) -> Prompts:
        """``n`` captions of ``split`` images (one random caption per drawn image), deterministic in the seed."""
        if split not in self._prompts:
            pool = self.pool(split)
            rng = np.random.default_rng(self.derived_seed("prompts", split, self.subset))
            ids = rng.choice(pool, size=self.n, replace=self.n > len(pool))
            offsets = np.asarray(self.cache.caption_offsets)
            counts = offsets[ids + 1] - offsets[ids]
            cap = offsets[ids] + (rng.random(self.n) * counts).astype(np.int64)
            base = 0 if split == "test" else 10_000_000
            self._prompts[split] = Prompts(
                ids,
                cap,
                [self.cache.flat_captions[j] for j in cap],
                np.asarray(self.cache.class_ids)[ids],
                [base + i for i in range(self.n)],
            )
        return self._prompts[split]

    def _generate(
        self, captions: Sequence[str], seeds: Sequence[int], desc: str, caption_ids: Sequence[int] | None = None
    ) -> np.ndarray:
        if self.generate is None:
            raise RuntimeError("this EvalContext has no generator")
        out = []
        for s in progress_bar(range(0, len(captions), self.batch), enabled=self.progress, desc=desc, leave=False):
            caps, sds = list(captions[s : s + self.batch]), list(seeds[s : s + self.batch])
            if caption_ids is not None and getattr(self.generate, "accepts_caption_ids", False):
                imgs = self.generate(caps, sds, caption_ids=[int(j) for j in caption_ids[s : s + self.batch]])
            else:
                imgs = self.generate(caps, sds)
            out.append(to_uint8(imgs))
        return np.concatenate(out)

    def samples(self, split: str) -> np.ndarray:
        """Generated uint8 ``[n, H, W, 3]`` for ``prompts(split)`` (computed once)."""
        if split not in self._samples:
            p = self.prompts(split)
            self._samples[split] = self._generate(p.captions, p.seeds, f"sampling {split} captions", p.caption_ids)
        return self._samples[split]

    def same_caption_samples(self, groups: int, per: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``groups`` test captions × ``per`` seeds each → (captions, class ids, uint8 images ``[groups*per, …]``)."""
        if (groups, per) in self._same_caption:
            return self._same_caption[(groups, per)]
        p = self.prompts("test")
        caps = [p.captions[i % self.n] for i in range(groups)]
        seeds = [20_000_000 + g * per + k for g in range(groups) for k in range(per)]
        ids = [int(p.caption_ids[i % self.n]) for i in range(groups) for _ in range(per)]
        imgs = self._generate([c for c in caps for _ in range(per)], seeds, "sampling same-caption sets", ids)
        self._same_caption[(groups, per)] = (caps, p.class_ids[np.arange(groups) % self.n], imgs)
        return self._same_caption[(groups, per)]

    def real_images(self, idx: np.ndarray, size: int | None = None) -> np.ndarray:
        sizes = list(self.cache.sizes)
        size = size or (self.evaluator.config.image_size if self.evaluator is not None else max(sizes))
        src = size if size in sizes else max(sizes)
        return resize_uint8(np.asarray(self.cache.images(src)[np.asarray(idx)]), size)

    # -- feature networks --------------------------------------------------------------------------------------------
    def net(self, name: str) -> FeatureNet:
        if name == "evaluator":
            ev = self.evaluator
            return FeatureNet(
                "evaluator",
                ev.config.image_size,
                ev.features,
                lambda x: torch.softmax(ev(x)["class"], 1),
                ev.fingerprint,
            )
        if name == "inception":
            inc = self.inception
            return FeatureNet("inception", 299, inc.pool3, lambda x: torch.softmax(inc.logits(x), 1), inc.fingerprint)
        raise KeyError(name)

    def evaluator_input(self, images: np.ndarray) -> np.ndarray:
        return resize_uint8(images, self.evaluator.config.image_size)

    @torch.no_grad()
    def batched(self, fn: Callable[[Any], Any], images: np.ndarray, as_tensor: bool = False) -> np.ndarray:
        """Apply ``fn`` to uint8 images in batches (``as_tensor``: pass float [-1, 1] NCHW tensors)."""
        outs = []
        for s in range(0, len(images), 256):
            chunk = images[s : s + 256]
            if as_tensor:
                chunk = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            out = fn(chunk)
            outs.append(out.detach().float().numpy() if isinstance(out, torch.Tensor) else np.asarray(out))
        return np.concatenate(outs)

    @torch.no_grad()
    def apply_net(
        self, fn: Callable[[torch.Tensor], torch.Tensor], size: int, images: Any, chunk: int = 128
    ) -> np.ndarray:
        """``fn`` over uint8 ``images`` (array or memmap), resized to ``size`` chunk by chunk (bounded memory: 2,000
        images at 299 px would be 0.5 GB at once)."""
        outs = []
        for s in range(0, len(images), chunk):
            x = resize_uint8(np.asarray(images[s : s + chunk]), size)
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            outs.append(fn(t).detach().float().numpy())
        return np.concatenate(outs)

    def image_features(self, net: str, images: np.ndarray) -> np.ndarray:
        fn = self.net(net)
        return self.apply_net(fn.features, fn.size, images)

    def fake_features(self, net: str, split: str) -> np.ndarray:
        key = (net, split, "features")
        if key not in self._fake:
            self._fake[key] = self.image_features(net, self.samples(split))
        return self._fake[key]

    def fake_probs(self, net: str, split: str) -> np.ndarray:
        key = (net, split, "probs")
        if key not in self._fake:
            fn = self.net(net)
            self._fake[key] = self.apply_net(fn.probs, fn.size, self.samples(split))
        return self._fake[key]

    def real_features(self, net: str, split: str) -> np.ndarray:
        """Features of all real ``split`` images, cached as ``<cache>/metrics/<net>_<split>_<fingerprint>.npz``."""
        fn = self.net(net)
        fp = fingerprint(
            [getattr(self.cache, "fingerprint", ""), fn.fingerprint, fn.size, RESIZE, split, self.subset, "v2"]
        )
        path = self.feature_cache_dir / f"{net}_{split}_{self.subset}_{fp}.npz"
        if path.exists():
            with np.load(path) as z:
                return z["features"]
        idx = self.pool(split)
        sizes = list(self.cache.sizes)
        src = self.cache.images(fn.size if fn.size in sizes else max(sizes))
        feats = np.concatenate(
            [self.apply_net(fn.features, fn.size, src[idx[s : s + 512]]) for s in range(0, len(idx), 512)]
        ).astype(np.float32)
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, features=feats, mu=feats.astype(np.float64).mean(0), indices=idx)
        return feats

    # -- reporting helpers -------------------------------------------------------------------------------------------
    def protocol(self, base: str, split: str, net: str | None) -> str:
        size = "" if net is None else f"_{self.net(net).size}px-{RESIZE}"
        if net == "inception" and not getattr(self.inception, "standard", False):
            size += "-nonstandard"  # weights other than the standard FID/IS file: not comparable with papers
        subset = "" if self.subset == "all" else f"-{self.subset}"
        return f"{base}_{n_label(self.n)}_{split}{subset}{size}"

    @torch.no_grad()
    def encode_text(self, encoder: Any, captions: list[str]) -> np.ndarray:
        outs = [encoder.encode(captions[s : s + 256]) for s in range(0, len(captions), 256)]
        return np.concatenate([o.detach().float().numpy() if isinstance(o, torch.Tensor) else o for o in outs])

    def save_neighbour_grid(self, name: str, neighbours: np.ndarray, bank_ids: np.ndarray) -> str | None:
        """Rows: generated test image | its k nearest training images. Returns the PNG path (None without out_dir)."""
        if self.out_dir is None:
            return None
        m, k = neighbours.shape
        gen = self.evaluator_input(self.samples("test")[:m]) if self.evaluator is not None else self.samples("test")[:m]
        size = gen.shape[1]
        rows = []
        for i in range(m):
            rows.append(gen[i : i + 1])
            rows.append(self.real_images(bank_ids[neighbours[i]], size))
        grid = make_grid(
            np.concatenate(rows),
            nrow=k + 1,
            col_labels=["generated", *[f"NN {j + 1}" for j in range(k)]],
            scale=max(1, 96 // size),
        )
        path = self.out_dir / f"{name}.png"
        save_image(grid, path)
        return str(path)
