"""The attribute evaluator: a small CNN trained on *real* synthetic-flower images to read each attribute off an image.

It is the measuring instrument for attribute accuracy (what fraction of the attributes a caption names are visible
in the generated image), and — as StackGAN used an Inception-v3 fine-tuned on CUB's classes — the classifier for
``is_evaluator`` and the feature network for ``fid_evaluator``/``kid_evaluator``/``nn_evaluator``.

Multi-head: one softmax per attribute plus one over the dataset's classes, on a shared trunk (conv3×3 + BN + ReLU:
a stride-2 stem, a block at half resolution, three stride-2 stages, global average pooling → ``feature_dim``
features). Trained on a random 90 % of *all* images (seen and unseen classes: the instrument must read every
attribute combination); the other 10 % give its own accuracy, the ceiling any generator can reach. Saved as
``config.json`` (constructor arguments + the training report) and ``model.safetensors``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2igan.data.cache import PreparedCache
from t2igan.metrics.style_factors import TARGETS, has_style, style_targets
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json, read_json, sha256_file
from t2igan.utils.outputs import atomic_dir, check_replaceable, json_says
from t2igan.utils.pretrained import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    Pretrained,
    config_from_dict,
    load_pretrained,
    load_weights,
    read_config,
    read_weights,
    register_pretrained,
    save_pretrained,
)
from t2igan.utils.progress import progress_bar
from t2igan.utils.seed import derive_seed, torch_generator

EVALUATOR_KIND = "evaluator"  # the folder's ownership marker (utils.outputs)
FORMAT = "t2igan-evaluator/1"  # config.json of folders written before t2igan.utils.pretrained
REPORT_NAME = "report.json"  # the training report (held-out accuracy: the ceiling) beside config + weights
_is_evaluator_folder = json_says("config.json", "format", FORMAT)  # folders written before the marker existed


def check_evaluator_out(out: str | Path, overwrite: bool = False) -> None:
    """Fail now (before training) if ``out`` holds something other than an evaluator and ``overwrite`` is off."""
    check_replaceable(out, EVALUATOR_KIND, overwrite=overwrite, is_own=_is_evaluator_folder)


@dataclass
class EvaluatorConfig:
    image_size: int = 64
    attribute_names: list[str] = field(default_factory=list)
    attribute_values: list[list[str]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    width: int = 24
    feature_dim: int = 128
    style_targets: list[str] = field(default_factory=list)  # style regression targets (metrics.style_factors)
    style_mean: list[float] = field(default_factory=list)  # their standardisation (real training images)
    style_std: list[float] = field(default_factory=list)
    n_backgrounds: int = 0  # background-tone classes (0 = no style heads)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register_pretrained(EvaluatorConfig)
class AttributeEvaluator(Pretrained, nn.Module):
    """``forward(x [-1,1] [B,3,S,S]) -> {attribute name: logits, "class": logits}``; ``features(x) -> [B, F]``."""

    weights_label = "evaluator"

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        # stride-2 stem (the 64 px input holds no detail finer than 2 px that an attribute depends on), one block at
        # 32 px for the small centre disc, then three stride-2 stages: ~10× cheaper than a stride-1 stem.
        self.trunk = nn.Sequential(
            _block(3, w, 2),
            _block(w, w, 1),
            _block(w, 2 * w, 2),
            _block(2 * w, 4 * w, 2),
            _block(4 * w, 4 * w, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, config.feature_dim),
            nn.ReLU(inplace=True),
        )
        heads = {f"attr_{i}": nn.Linear(config.feature_dim, len(v)) for i, v in enumerate(config.attribute_values)}
        if config.class_names:
            heads["class"] = nn.Linear(config.feature_dim, len(config.class_names))
        if config.style_targets:  # position, scale and rotation phase need the spatial map, not pooled features
            grid = (config.image_size // 16) ** 2
            n_targets = len(config.style_targets)
            heads["style"] = nn.Sequential(
                nn.Flatten(), nn.Linear(4 * w * grid, 128), nn.ReLU(inplace=True), nn.Linear(128, n_targets)
            )
        if config.n_backgrounds:
            heads["background"] = nn.Linear(config.feature_dim, config.n_backgrounds)
        self.heads = nn.ModuleDict(heads)
        self.fingerprint = ""  # sha of the weights file once loaded

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)[1]

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the 4×4 conv map, the pooled features)."""
        if x.shape[-1] != self.config.image_size or x.shape[-2] != self.config.image_size:
            raise ValueError(f"evaluator expects {self.config.image_size}px images, got {tuple(x.shape)}")
        spatial = self.trunk[:5](x)
        return spatial, self.trunk[5:](spatial)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        spatial, f = self._run(x)
        out = {name: self.heads[f"attr_{i}"](f) for i, name in enumerate(self.config.attribute_names)}
        for head in ("class", "background"):
            if head in self.heads:
                out[head] = self.heads[head](f)
        if "style" in self.heads:
            out["style"] = self.heads["style"](spatial)
        return out

    @property
    def reads_style(self) -> bool:
        return bool(self.config.style_targets) and self.config.n_backgrounds > 0

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
        """uint8 ``[N, S, S, 3]`` → predicted value index per attribute (and class, background) ``{name: [N]}``."""
        self.eval()
        outs: dict[str, list[np.ndarray]] = {}
        for s in range(0, len(images), batch):
            logits = self(uint8_to_tensor(images[s : s + batch]))
            for k, v in logits.items():
                if k != "style":
                    outs.setdefault(k, []).append(v.argmax(1).numpy())
        return {k: np.concatenate(v) for k, v in outs.items()}

    @torch.no_grad()
    def predict_style(self, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images → (style targets ``[N, T]`` in their own units, background class ``[N]``)."""
        if not self.reads_style:
            raise T2IError("this evaluator has no style heads", hint="retrain it on data with style factors")
        self.eval()
        mean, std = np.asarray(self.config.style_mean), np.asarray(self.config.style_std)
        reg, bg = [], []
        for s in range(0, len(images), batch):
            out = self(uint8_to_tensor(images[s : s + batch]))
            reg.append(out["style"].numpy() * std + mean)
            bg.append(out["background"].argmax(1).numpy())
        return np.concatenate(reg).astype(np.float32), np.concatenate(bg)

    def save_pretrained(self, out: str | Path, report: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (``t2igan.utils.pretrained``) and ``report.json``, as one
        folder replaced atomically; an existing ``out`` that is not an evaluator folder is a one-line error unless
        ``overwrite``."""
        out = Path(out)
        with atomic_dir(out, kind=EVALUATOR_KIND, overwrite=overwrite, is_own=_is_evaluator_folder) as tmp:
            save_pretrained(self, tmp)
            atomic_write_json(tmp / REPORT_NAME, report if report is not None else getattr(self, "report", {}))
        self.fingerprint = sha256_file(out / WEIGHTS_NAME)[:16]
        return out


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` → float ``[N, 3, H, W]`` in [-1, 1]."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2)  # a copy: memmaps are read-only
    return x / 127.5 - 1.0


def load_evaluator(folder: str | Path) -> AttributeEvaluator:
    """Load a folder written by :meth:`AttributeEvaluator.save_pretrained` (or ``t2igan evaluator train``)."""
    folder = Path(folder)
    hint = "train one with: t2igan evaluator train DATA --out DIR"
    meta = read_config(folder, hint=hint)
    if meta.get("format") == FORMAT:  # written before t2igan.utils.pretrained: config and report in config.json
        model = AttributeEvaluator(config_from_dict(EvaluatorConfig, meta.get("config") or {}, folder / CONFIG_NAME))
        load_weights(model, read_weights(folder, hint=hint, what="evaluator weights"), folder / WEIGHTS_NAME, hint=hint)
        report = meta.get("report", {})
    else:
        model = load_pretrained(folder, expected=AttributeEvaluator)
        report = read_json(folder / REPORT_NAME, hint=hint) if (folder / REPORT_NAME).is_file() else {}
    model.eval()
    model.fingerprint = sha256_file(folder / WEIGHTS_NAME)[:16]
    model.report = report  # type: ignore[attr-defined]
    return model


def evaluator_split(n: int, seed: int, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) image indices for the evaluator."""
    perm = np.random.default_rng(derive_seed(seed, "evaluator-split")).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_evaluator(
    cache: PreparedCache,
    size: int = 64,
    steps: int = 700,
    seed: int = 0,
    batch: int = 64,
    lr: float = 2e-3,
    width: int = 24,
    progress: bool = True,
) -> AttributeEvaluator:
    """Train an evaluator on the real images of ``cache`` (a ``PreparedCache``); its report is in ``model.report``."""
    if cache.attributes is None:
        raise T2IError(
            "this dataset has no ground-truth attributes (attributes.json)",
            path=cache.root,
            hint="the attribute evaluator needs synthetic flowers: t2igan data synth --out DIR",
        )
    if size not in cache.sizes:
        raise T2IError(
            f"the cache has no {size}px images (has {cache.sizes})",
            path=cache.root,
            hint=f"re-prepare the data with size {size}, or pass --size {cache.sizes[0]}",
        )
    images = np.asarray(cache.images(size))
    attrs = torch.as_tensor(np.asarray(cache.attributes), dtype=torch.long)
    classes = torch.as_tensor(np.asarray(cache.class_ids), dtype=torch.long)
    tr, val = evaluator_split(len(images), seed)
    style = bg = None
    style_cfg: dict[str, Any] = {}
    if has_style(cache):
        targets, background = style_targets(cache)
        mean, std = targets[tr].mean(0), targets[tr].std(0) + 1e-6
        style = torch.as_tensor((targets - mean) / std, dtype=torch.float32)
        bg = torch.as_tensor(background, dtype=torch.long)
        style_cfg = {
            "style_targets": list(TARGETS),
            "style_mean": mean.tolist(),
            "style_std": std.tolist(),
            "n_backgrounds": int(background.max()) + 1,
        }
    cfg = EvaluatorConfig(
        image_size=size,
        attribute_names=list(cache.attribute_names),
        attribute_values=[list(v) for v in cache.attribute_values],
        class_names=list(cache.class_names),
        width=width,
        **style_cfg,
    )
    torch.manual_seed(derive_seed(seed, "evaluator-init") % 2**31)  # init only; data order uses a generator
    model = AttributeEvaluator(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch_generator(derive_seed(seed, "evaluator-data"))
    t0 = time.time()
    model.train()
    bar = progress_bar(range(steps), enabled=progress, desc="evaluator", leave=False)
    for step in bar:
        pick = torch.as_tensor(tr)[torch.randint(len(tr), (batch,), generator=gen)]
        x = uint8_to_tensor(images[pick.numpy()])
        if style is None:  # a flip changes the position and lighting targets: only without style heads
            flip = torch.rand(batch, generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        out = model(x)
        loss = sum(F.cross_entropy(out[n], attrs[pick, i]) for i, n in enumerate(cfg.attribute_names))
        loss = loss + F.cross_entropy(out["class"], classes[pick])
        if style is not None and bg is not None:
            loss = loss + F.mse_loss(out["style"], style[pick]) + F.cross_entropy(out["background"], bg[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    model.report = {  # type: ignore[attr-defined]
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "seconds": round(time.time() - t0, 1),
        "n_train": len(tr),
        "n_heldout": len(val),
        "cache_fingerprint": getattr(cache, "fingerprint", ""),
        "heldout_accuracy": heldout_accuracy(model, cache, val, images),
    }
    return model


def heldout_accuracy(
    model: AttributeEvaluator, cache: PreparedCache, idx: np.ndarray, images: np.ndarray
) -> dict[str, Any]:
    """Per-attribute accuracy on real ``idx`` images, overall and split by seen (train) / unseen (test) classes."""
    pred = model.predict(images[idx])
    split = np.asarray(cache.split)[idx]
    attrs = np.asarray(cache.attributes)[idx]
    out: dict[str, Any] = {}
    for part, mask in (("all", np.ones(len(idx), bool)), ("seen", split == "train"), ("unseen", split == "test")):
        if not mask.any():
            continue
        per = {n: float((pred[n][mask] == attrs[mask, i]).mean()) for i, n in enumerate(model.config.attribute_names)}
        out[part] = {"per_attribute": per, "overall": float(np.mean(list(per.values()))), "n": int(mask.sum())}
    out["class_accuracy"] = float((pred["class"] == np.asarray(cache.class_ids)[idx]).mean())
    if model.reads_style and has_style(cache):
        targets, background = style_targets(cache)
        reg, bg = model.predict_style(images[idx])
        truth = targets[idx]
        r2 = 1.0 - ((reg - truth) ** 2).mean(0) / np.maximum(truth.var(0), 1e-12)
        out["style_r2"] = {n: float(v) for n, v in zip(model.config.style_targets, r2, strict=True)}
        out["background_accuracy"] = float((bg == background[idx]).mean())
    return out


def get_or_train_evaluator(
    cache: PreparedCache,
    folder: str | Path | None = None,
    size: int = 64,
    steps: int = 700,
    seed: int = 0,
    progress: bool = False,
) -> AttributeEvaluator:
    """The evaluator saved in ``folder`` (default ``<cache>/evaluator``) if it was trained on this cache at this size,
    else a freshly trained one (saved there)."""
    folder = Path(folder) if folder is not None else Path(cache.root) / "evaluator"
    if (folder / "model.safetensors").exists():
        ev = load_evaluator(folder)
        rep = getattr(ev, "report", {})
        if rep.get("cache_fingerprint") == getattr(cache, "fingerprint", "") and ev.config.image_size == size:
            return ev
    ev = train_evaluator(cache, size=size, steps=steps, seed=seed, progress=progress)
    ev.save_pretrained(folder)
    return load_evaluator(folder)
