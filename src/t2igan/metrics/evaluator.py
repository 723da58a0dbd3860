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

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_dir, sha256_file
from t2igan.utils.seed import derive_seed, torch_generator
from t2igan.utils.weights import read_safetensors


@dataclass
class EvaluatorConfig:
    image_size: int = 64
    attribute_names: list[str] = field(default_factory=list)
    attribute_values: list[list[str]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    width: int = 24
    feature_dim: int = 128


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttributeEvaluator(nn.Module):
    """``forward(x [-1,1] [B,3,S,S]) -> {attribute name: logits, "class": logits}``; ``features(x) -> [B, F]``."""

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
        self.heads = nn.ModuleDict(heads)
        self.fingerprint = ""  # sha of the weights file once loaded

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.config.image_size or x.shape[-2] != self.config.image_size:
            raise ValueError(f"evaluator expects {self.config.image_size}px images, got {tuple(x.shape)}")
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x)
        out = {name: self.heads[f"attr_{i}"](f) for i, name in enumerate(self.config.attribute_names)}
        if "class" in self.heads:
            out["class"] = self.heads["class"](f)
        return out

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
        """uint8 ``[N, S, S, 3]`` → predicted value index per attribute (and class) ``{name: [N]}``."""
        self.eval()
        outs: dict[str, list[np.ndarray]] = {}
        for s in range(0, len(images), batch):
            logits = self(uint8_to_tensor(images[s : s + batch]))
            for k, v in logits.items():
                outs.setdefault(k, []).append(v.argmax(1).numpy())
        return {k: np.concatenate(v) for k, v in outs.items()}

    def save_pretrained(self, out: str | Path, report: dict[str, Any] | None = None) -> Path:
        out = Path(out)
        with atomic_dir(out) as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp / "model.safetensors"))
            report = report if report is not None else getattr(self, "report", {})
            meta = {"config": asdict(self.config), "report": report, "format": "t2igan-evaluator/1"}
            (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        self.fingerprint = sha256_file(out / "model.safetensors")[:16]
        return out


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` → float ``[N, 3, H, W]`` in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def load_evaluator(folder: str | Path) -> AttributeEvaluator:
    """Load a folder written by :meth:`AttributeEvaluator.save_pretrained` (or ``t2igan evaluator train``)."""
    folder = Path(folder)
    cfg_path, weights = folder / "config.json", folder / "model.safetensors"
    if not cfg_path.exists() or not weights.exists():
        raise T2IError(
            "not an evaluator folder (needs config.json + model.safetensors)",
            path=folder,
            hint="train one with: t2igan evaluator train DATA --out DIR",
        )
    hint = "train it again with: t2igan evaluator train DATA --out DIR"
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        model = AttributeEvaluator(EvaluatorConfig(**meta["config"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise T2IError(f"damaged evaluator config ({type(e).__name__}: {e})", path=cfg_path, hint=hint) from None
    state = read_safetensors(weights, what="evaluator weights", hint=hint)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise T2IError(f"weights do not fit config.json ({str(e).splitlines()[0]})", path=weights, hint=hint) from None
    model.eval()
    model.fingerprint = sha256_file(weights)[:16]
    model.report = meta.get("report", {})  # type: ignore[attr-defined]
    return model


def evaluator_split(n: int, seed: int, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) image indices for the evaluator."""
    perm = np.random.default_rng(derive_seed(seed, "evaluator-split")).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_evaluator(
    cache: Any,
    size: int = 64,
    steps: int = 700,
    seed: int = 0,
    batch: int = 64,
    lr: float = 2e-3,
    width: int = 24,
    progress: bool = True,
) -> AttributeEvaluator:
    """Train an evaluator on the real images of ``cache`` (a ``PreparedCache``); its report is in ``model.report``."""
    if getattr(cache, "attributes", None) is None:
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
    cfg = EvaluatorConfig(
        image_size=size,
        attribute_names=list(cache.attribute_names),
        attribute_values=[list(v) for v in cache.attribute_values],
        class_names=list(cache.class_names),
        width=width,
    )
    torch.manual_seed(derive_seed(seed, "evaluator-init") % 2**31)  # init only; data order uses a generator
    model = AttributeEvaluator(cfg)
    tr, val = evaluator_split(len(images), seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch_generator(derive_seed(seed, "evaluator-data"))
    from tqdm import tqdm

    t0 = time.time()
    model.train()
    bar = tqdm(range(steps), desc="evaluator", disable=not progress, leave=False)
    for step in bar:
        pick = torch.as_tensor(tr)[torch.randint(len(tr), (batch,), generator=gen)]
        x = uint8_to_tensor(images[pick.numpy()])
        flip = torch.rand(batch, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        out = model(x)
        loss = sum(F.cross_entropy(out[n], attrs[pick, i]) for i, n in enumerate(cfg.attribute_names))
        loss = loss + F.cross_entropy(out["class"], classes[pick])
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


def heldout_accuracy(model: AttributeEvaluator, cache: Any, idx: np.ndarray, images: np.ndarray) -> dict[str, Any]:
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
    return out


def get_or_train_evaluator(
    cache: Any,
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
