"""`T2IPipeline`: captions in, images out — the diffusers shape for text-to-image GANs.

```python
pipe = T2IPipeline.from_pretrained("runs/demo/pretrained")
out = pipe(prompt="this flower has red petals", num_images_per_prompt=4, seeds=[0, 1, 2, 3])
out.images[0].save("red.png")
```

The call takes diffusers' names (``prompt``, ``num_images_per_prompt``, ``generator``, ``latents``, ``prompt_embeds``,
``output_type``): ``"pil"``, or ``"pt"`` / ``"np"`` in [0, 1] as in diffusers; ``denormalize=False`` keeps the
generator's own [-1, 1] range (what grids and metrics inside t2igan use).

Generation is x = G(z, φ(t)) (Reed et al. 2016, §3–4): the caption t is embedded by the text encoder φ, z ~ N(0, I)
is drawn *per seed* from its own generator, so a caption and a seed always give the same image, whatever else is in
the batch. Generators are put in ``eval()`` (batch norm uses its running statistics) and run under
``torch.inference_mode()``.

Pretrained folder (written by ``save_pretrained`` and by the trainers' ``export``)::

    model_index.json           {"_class_name": "T2IPipeline", "generator": [module, class], "text_encoder": …}
    generator/config.json      the generator's config dataclass (+ "_class_name")
    generator/model.safetensors
    text_encoder/…             the encoder's own save_pretrained, or precomputed.json (no encoder: see below)
    style_encoder/…            optional: the style encoder S of Reed 2016 §4.4 (`t2igan style train`)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from t2igan.data.decode import check_pixels
from t2igan.sampling.ca_noise import ca_noise
from t2igan.training.export import (
    PRECOMPUTED_MARKER,
    PRETRAINED_KIND,
    ModelCard,
    card_named,
    is_pretrained_folder,
    model_index,
    save_text_side,
    write_model_card,
    write_model_index,
)
from t2igan.utils.errors import T2IError
from t2igan.utils.images import to_pil
from t2igan.utils.outputs import atomic_dir
from t2igan.utils.pretrained import load_pretrained, save_pretrained
from t2igan.utils.seed import SEED_MAX, torch_generator

if TYPE_CHECKING:
    from t2igan.text.base import TextEncoderLike

OutputType = Literal["pil", "pt", "np"]


@dataclass
class T2IPipelineOutput:
    """Result of a pipeline call.

    ``images``: list of PIL images (``"pil"``), a float tensor ``[N, 3, H, W]`` (``"pt"``) or a float32 array
    ``[N, H, W, 3]`` (``"np"``), both in [0, 1] (in [-1, 1] with ``denormalize=False``), prompt-major: the
    ``num_images_per_prompt`` images of caption 0 first.
    ``captions[i]`` and ``seeds[i]`` say what made image ``i`` (seeds are ``None`` when a ``generator`` was passed).
    ``stages``: for multi-stage generators (StackGAN), every stage coarse → fine in the same output type;
    ``None`` for single-stage ones.
    """

    images: Any
    captions: list[str]
    seeds: list[int] | None
    stages: list[Any] | None = None
    text_embeddings: torch.Tensor | None = field(default=None, repr=False)


def _load_text_encoder(path: Path) -> TextEncoderLike:
    from t2igan.text import load_text_encoder  # sampling sits above text: a downward import

    return load_text_encoder(path)


class T2IPipeline:
    """A generator G(z, φ(t)) with its text encoder φ (and optionally a style encoder S)."""

    def __init__(
        self,
        generator: nn.Module,
        text_encoder: TextEncoderLike | None = None,
        style_encoder: nn.Module | None = None,
        *,
        text_info: dict[str, Any] | None = None,
    ) -> None:
        self.generator = generator.eval()
        self.text_encoder = text_encoder
        self._style_encoder = None if style_encoder is None else style_encoder.eval()
        self._style_dir: Path | None = None  # set by from_pretrained: S is read on first use (see `style_encoder`)
        self._style_error: T2IError | None = None  # why S could not be read, for `require_style_encoder`
        # Describes the text side when there is no encoder (precomputed embeddings): shown in errors.
        self.text_info = dict(text_info or {})
        self.path: Path | None = None  # the folder it was loaded from, if any
        self._image_size: int | None = None
        if text_encoder is not None and getattr(text_encoder, "dim", self.text_dim) != self.text_dim:
            raise T2IError(
                f"text encoder gives {text_encoder.dim}-d embeddings but the generator expects {self.text_dim}-d"
            )

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    @property
    def text_dim(self) -> int:
        return int(self.generator.text_dim)

    @property
    def image_size(self) -> int:
        """Side of the final images (found by running G once on one sample; cached)."""
        if self._image_size is None:
            z = torch.zeros(1, self.z_dim, device=self.device)
            self._image_size = int(self.generate(z, torch.zeros(1, self.text_dim, device=self.device))[-1].shape[-1])
        return self._image_size

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def style_encoder(self) -> nn.Module | None:
        """S, read from the folder on first use: sampling never needs it, so a damaged S cannot stop `sample` or
        `serve` (a warning says it was not loaded; `require_style_encoder` then raises the reason)."""
        if self._style_dir is not None:
            folder, self._style_dir = self._style_dir, None
            from t2igan.models.style import StyleEncoder

            try:
                self._style_encoder = StyleEncoder.from_pretrained(folder).eval().to(self.device)
            except T2IError as e:
                self._style_error = e
                warnings.warn(f"style encoder not loaded: {e}", stacklevel=2)
        return self._style_encoder

    @style_encoder.setter
    def style_encoder(self, module: nn.Module | None) -> None:
        self._style_dir = None
        self._style_encoder = module

    def to(self, device: str | torch.device) -> T2IPipeline:
        self.generator.to(device)
        if isinstance(self.text_encoder, nn.Module):
            self.text_encoder.to(device)
        if self._style_encoder is not None:  # a not-yet-read S is loaded onto the generator's device later
            self._style_encoder.to(device)
        return self

    # ------------------------------------------------------------------------------------------------ save/load
    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | torch.device = "cpu") -> T2IPipeline:
        """Load a pretrained folder (see the module docstring), a run folder's ``pretrained/`` or a model shipped with
        the package by name (``"flowers-64"``, see `t2igan.pretrained`; an existing path wins); safetensors only."""
        from t2igan.pretrained import is_shipped_name, shipped_folder, shipped_names

        root = Path(path)
        if not root.exists() and is_shipped_name(path):
            root = shipped_folder(str(path))
        if not (root / "model_index.json").is_file() and (root / "pretrained" / "model_index.json").is_file():
            root = root / "pretrained"  # a run folder: use its export
        index_path = root / "model_index.json"
        if not root.is_dir():
            raise T2IError(
                "no such model folder or shipped model name",
                path=root,
                hint=f"pass a run or pretrained folder, or a shipped model: {', '.join(shipped_names())}",
            )
        if not index_path.is_file():
            raise T2IError(
                "not a pretrained folder (model_index.json missing)",
                path=root,
                hint="point at a run folder or its `pretrained/` (written by `t2igan train` / `t2igan demo`)",
            )
        index = _read_json(index_path)
        generator = load_pretrained(root / "generator")
        text_encoder, text_info = None, {}
        te_dir = root / "text_encoder"
        te_cfg = _read_json(te_dir / "config.json") if (te_dir / "config.json").is_file() else {}
        if (te_dir / PRECOMPUTED_MARKER).is_file():
            text_info = _read_json(te_dir / PRECOMPUTED_MARKER)
        elif te_cfg.get("type") == "precomputed":
            text_info = te_cfg
        elif te_dir.is_dir() and any(te_dir.iterdir()):
            text_encoder = _load_text_encoder(te_dir)
        else:
            text_info = {"precomputed": True}
        pipe = cls(generator, text_encoder, None, text_info=text_info)
        pipe.path = root
        if index.get("style_encoder") and (root / "style_encoder").is_dir():
            pipe._style_dir = root / "style_encoder"  # read lazily: only style transfer needs S
        return pipe.to(device)

    def save_pretrained(self, path: str | Path, *, card: ModelCard | None = None) -> Path:
        """Write the folder atomically: index, generator config + safetensors, text encoder (or marker), S, and the
        model card ``README.md`` (``card``: metrics, datasets, sample grid, training config — see ``ModelCard``)."""
        path = Path(path)
        with atomic_dir(path, kind=PRETRAINED_KIND, is_own=is_pretrained_folder) as tmp:
            save_pretrained(self.generator, tmp / "generator")
            te_dir = tmp / "text_encoder"
            te_dir.mkdir()
            save_text_side(te_dir, self.text_encoder, {"dim": self.text_dim, **self.text_info})
            if self.style_encoder is not None:
                self.style_encoder.save_pretrained(tmp / "style_encoder")
            index = model_index(self.generator, self.text_encoder, self.style_encoder, **self._provenance())
            write_model_index(tmp, index)
            write_model_card(tmp, index, card_named(card, path))
        return path

    def _provenance(self) -> dict[str, Any]:
        """What the folder this pipeline was loaded from said about its training (model family, step, …)."""
        if self.path is None or not (self.path / "model_index.json").is_file():
            return {}
        keep = ("model", "step", "variant", "ema", "loss", "seed", "embeddings", "converted_from")
        return {k: v for k, v in _read_json(self.path / "model_index.json").items() if k in keep}

    # ------------------------------------------------------------------------------------------------ the steps
    def encode_prompt(self, captions: Sequence[str]) -> torch.Tensor:
        """φ(t) for each caption → float tensor ``[P, text_dim]`` on the pipeline's device."""
        captions = check_captions(captions)
        if self.text_encoder is None:
            raise T2IError(
                "this model was trained on precomputed embeddings and has no text encoder; pass "
                f"text_embeddings=… (a [N, {self.text_dim}] tensor) or train with an encoder"
            )
        with torch.inference_mode():
            emb = self.text_encoder.encode(list(captions))
        emb = torch.as_tensor(emb, dtype=torch.float32).to(self.device)
        if emb.shape != (len(captions), self.text_dim):
            raise T2IError(
                f"text encoder returned shape {tuple(emb.shape)}, expected ({len(captions)}, {self.text_dim})"
            )
        return emb

    def prepare_latents(
        self,
        n: int,
        *,
        seeds: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
    ) -> torch.Tensor:
        """z ~ N(0, I) of shape ``[n, z_dim]``.

        With ``seeds`` (length n) each row is drawn from its own generator seeded with ``seeds[i]``, so the row
        depends on its seed only. Otherwise the rows are drawn in one go from ``generator``. ``truncation`` t
        redraws every |z_j| > t from the same stream (the truncation trick; deterministic too).
        """
        if seeds is not None:
            if len(seeds) != n:
                raise ValueError(f"need {n} seeds, got {len(seeds)}")
            rows = [_normal(self.z_dim, torch_generator(int(s)), truncation) for s in seeds]
            z = torch.stack(rows) if rows else torch.empty(0, self.z_dim)
        else:
            z = _normal((n, self.z_dim), generator, truncation)
        return z.to(self.device)

    def prepare_ca_noise(
        self, n: int, *, seeds: Sequence[int] | None = None, generator: torch.Generator | None = None
    ) -> list[torch.Tensor] | None:
        """ε for the generator's Conditioning Augmentation (StackGAN families; None for the others or with
        ``generator.use_ca_mean = True``): per seed like `prepare_latents`, else from ``generator``."""
        noise = ca_noise(self.generator, n, seeds=seeds, stream=generator)
        return None if noise is None else [e.to(self.device) for e in noise]

    def generate(
        self,
        z: torch.Tensor,
        text_embeddings: torch.Tensor,
        *,
        ca_noise: list[torch.Tensor] | None = None,
        batch_size: int = 64,
    ) -> list[torch.Tensor]:
        """Run G in eval mode on ``batch_size`` rows at a time; returns the stages (coarse → fine, ≥ 1).

        ``ca_noise``: the CA's ε (`prepare_ca_noise`); when the generator needs it and none is given, it is drawn
        from a generator seeded 0 (the same images for the same inputs).
        """
        if z.shape[0] != text_embeddings.shape[0]:
            raise ValueError(f"z has {z.shape[0]} rows but text_embeddings {text_embeddings.shape[0]}")
        self.generator.eval()
        if ca_noise is None:
            ca_noise = self.prepare_ca_noise(z.shape[0])
        chunks: list[list[torch.Tensor]] = []
        with torch.inference_mode():
            for i in range(0, z.shape[0], batch_size):
                emb = text_embeddings[i : i + batch_size].to(z.dtype)
                # Unconditional generators (text_dim 0, e.g. StackGAN++ uncond) take no text at all.
                args = (z[i : i + batch_size], emb if emb.shape[1] else None)
                if ca_noise is None:
                    out = self.generator(*args)
                else:
                    out = self.generator(*args, eps=[e[i : i + batch_size].to(z.dtype) for e in ca_noise])
                chunks.append(list(out) if isinstance(out, (list, tuple)) else [out])
        return [torch.cat([c[s] for c in chunks]).float().cpu() for s in range(len(chunks[0]))]

    def require_style_encoder(self) -> nn.Module:
        """The style encoder S, or a one-line error saying why it cannot be read or how to train one."""
        if self.style_encoder is None and self._style_error is not None:
            raise self._style_error
        if self.style_encoder is None:
            raise T2IError(
                "this model has no style encoder",
                path=self.path,
                hint=f"train one first: t2igan style train {self.path or 'MODEL_DIR'} --data CACHE",
            )
        return self.style_encoder

    def encode_style(self, images: torch.Tensor | Sequence[Image.Image]) -> torch.Tensor:
        """s = S(x) (Reed 2016 §4.4): images (PIL list, or [N,3,H,W] in [-1, 1]) → ``[N, z_dim]``."""
        size = self.require_style_encoder().config.image_size
        if not isinstance(images, torch.Tensor):
            images = torch.stack([pil_to_tensor(im, size) for im in images])
        if images.shape[-1] != size or images.shape[-2] != size:
            images = torch.nn.functional.interpolate(
                images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        with torch.inference_mode():
            return self.style_encoder(images.to(self.device).float())

    @staticmethod
    def postprocess(images: torch.Tensor, output_type: OutputType = "pil", *, denormalize: bool = True) -> Any:
        """G's [-1, 1] tensor → PIL list, or ``"pt"`` ``[N, 3, H, W]`` / ``"np"`` float32 ``[N, H, W, 3]`` in [0, 1]
        (diffusers' range); ``denormalize=False`` keeps [-1, 1] (clamped)."""
        if output_type == "pil":
            return to_pil(images)
        if output_type not in ("pt", "np"):
            raise ValueError(f"output_type must be 'pil', 'pt' or 'np', got {output_type!r}")
        x = images.clamp(-1, 1)
        if denormalize:
            x = (x + 1) / 2
        return x if output_type == "pt" else x.permute(0, 2, 3, 1).contiguous().numpy()

    def __call__(
        self,
        prompt: str | Sequence[str] | None = None,
        num_images_per_prompt: int = 1,
        *,
        captions: str | Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        output_type: OutputType = "pil",
        text_embeddings: torch.Tensor | np.ndarray | None = None,
        latents: torch.Tensor | None = None,
        truncation: float | None = None,
        batch_size: int = 64,
        prompt_embeds: torch.Tensor | np.ndarray | None = None,
        denormalize: bool = True,
    ) -> T2IPipelineOutput:
        """Generate ``num_images_per_prompt`` images for each caption.

        ``prompt``: a caption or a list of captions (diffusers' name; ``captions=`` is the same argument).
        ``output_type``: ``"pil"``, ``"pt"`` or ``"np"`` (see `T2IPipelineOutput`); ``denormalize=False`` returns
        ``"pt"``/``"np"`` in the generator's [-1, 1] instead of [0, 1].
        ``seeds``: one per image of a prompt (reused for every prompt, so columns share z — the StyleGAN habit) or
        one per output image; default ``0 … num_images_per_prompt-1``. ``generator`` instead draws all z from one
        stream (diffusers' habit). ``text_embeddings`` ``[P, D]`` replaces encoding (required for models trained
        on precomputed embeddings); ``captions`` then only label the images. ``prompt_embeds`` is its diffusers
        name. ``latents`` ``[N, z_dim]`` gives z explicitly (one row per output image; seeds are then ``None``).
        """
        # 1. check inputs
        if prompt is not None and captions is not None:
            raise T2IError("pass prompt or captions, not both (they are the same argument)")
        captions = prompt if prompt is not None else captions
        if output_type not in ("pil", "pt", "np"):
            raise T2IError(f"output_type must be 'pil', 'pt' or 'np', got {output_type!r}")
        if prompt_embeds is not None:
            if text_embeddings is not None:
                raise T2IError("pass text_embeddings or prompt_embeds, not both")
            text_embeddings = prompt_embeds
        if num_images_per_prompt < 1:
            raise T2IError(f"num_images_per_prompt must be ≥ 1, got {num_images_per_prompt}")
        if isinstance(captions, str):
            captions = [captions]
        # 2. encode the prompts: φ(t)
        if text_embeddings is not None:
            emb = torch.as_tensor(
                np.asarray(text_embeddings) if isinstance(text_embeddings, np.ndarray) else text_embeddings,
                dtype=torch.float32,
            ).to(self.device)
            if emb.dim() != 2 or emb.shape[1] != self.text_dim:
                raise T2IError(f"text_embeddings must have shape [N, {self.text_dim}], got {tuple(emb.shape)}")
            captions = list(captions) if captions is not None else [f"embedding {i}" for i in range(len(emb))]
            if len(captions) != len(emb):
                raise T2IError(f"{len(captions)} captions for {len(emb)} text embeddings")
        elif self.text_dim == 0:  # unconditional model: captions only label the images
            captions = list(captions) if captions else ["(unconditional)"]
            emb = torch.zeros(len(captions), 0, device=self.device)
        else:
            captions = check_captions(captions if captions is not None else [])
            emb = self.encode_prompt(captions)
        n_prompts = len(captions)
        # 3. one row per output image, prompt-major
        emb = emb.repeat_interleave(num_images_per_prompt, dim=0)
        out_captions = [c for c in captions for _ in range(num_images_per_prompt)]
        # 4. latents, per seed
        out_seeds: list[int] | None
        if latents is not None or (generator is not None and seeds is None):
            out_seeds = None
        else:
            seeds = list(range(num_images_per_prompt)) if seeds is None else [int(s) for s in seeds]
            if any(s < 0 or s > SEED_MAX for s in seeds):
                raise T2IError("seeds must be non-negative integers below 2^64")
            if len(seeds) == num_images_per_prompt:
                out_seeds = seeds * n_prompts
            elif len(seeds) == n_prompts * num_images_per_prompt:
                out_seeds = seeds
            else:
                raise T2IError(
                    f"got {len(seeds)} seeds for {n_prompts} caption(s) × {num_images_per_prompt} "
                    "image(s): give one seed per image of a caption, or one per output image"
                )
        if latents is not None:
            z = torch.as_tensor(latents, dtype=torch.float32).to(self.device)
            if z.shape != (len(out_captions), self.z_dim):
                raise T2IError(f"latents must have shape [{len(out_captions)}, {self.z_dim}], got {tuple(z.shape)}")
        else:
            z = self.prepare_latents(len(out_captions), seeds=out_seeds, generator=generator, truncation=truncation)
        # CA noise (StackGAN families), per seed like z, else from the same generator after z
        noise = self.prepare_ca_noise(len(out_captions), seeds=out_seeds, generator=generator)
        # 5. generate: x = G(z, φ(t))
        stages = self.generate(z, emb, ca_noise=noise, batch_size=batch_size)
        # 6. postprocess
        return T2IPipelineOutput(
            images=self.postprocess(stages[-1], output_type, denormalize=denormalize),
            captions=out_captions,
            seeds=out_seeds,
            stages=[self.postprocess(s, output_type, denormalize=denormalize) for s in stages]
            if len(stages) > 1
            else None,
            text_embeddings=emb.cpu(),
        )


# ------------------------------------------------------------------------------------------------------ helpers
def check_captions(captions: Sequence[str]) -> list[str]:
    """Captions as a non-empty list of non-blank strings (a one-line T2IError otherwise)."""
    if isinstance(captions, str):
        captions = [captions]
    captions = list(captions)
    if not captions:
        raise T2IError("no caption given", hint='pass at least one, e.g. "this flower has red petals"')
    for i, c in enumerate(captions):
        if not isinstance(c, str) or not c.strip():
            raise T2IError(f"caption {i + 1} is empty", hint="every caption must contain some text")
    return [c.strip() for c in captions]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise T2IError(f"cannot read JSON ({e})", path=path) from None
    if not isinstance(data, dict):
        raise T2IError("expected a JSON object", path=path)
    return data


def _normal(shape: int | tuple[int, ...], generator: torch.Generator | None, truncation: float | None) -> torch.Tensor:
    z = torch.randn(shape, generator=generator)
    if truncation is not None:
        if truncation <= 0:
            raise T2IError(f"truncation must be > 0, got {truncation}")
        for _ in range(100):
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=generator)
        z = z.clamp(-truncation, truncation)
    return z


def load_images(paths: Sequence[str | Path], size: int) -> torch.Tensor:
    """Read image files → float ``[N, 3, size, size]`` in [-1, 1] (centre-cropped square, bicubic resize)."""
    out = []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise T2IError("no such image file", path=p)
        try:
            with Image.open(p) as im:
                check_pixels(im, p)
                out.append(pil_to_tensor(im, size))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise T2IError(f"cannot read image ({e.__class__.__name__}: {e})", path=p) from None
    return torch.stack(out)


def pil_to_tensor(im: Image.Image, size: int) -> torch.Tensor:
    """A PIL image → ``[3, size, size]`` in [-1, 1]: centre-cropped to a square, bicubic resize."""
    im = im.convert("RGB")
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float32).copy()).permute(2, 0, 1) / 127.5 - 1.0
