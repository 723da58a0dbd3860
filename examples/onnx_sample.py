"""Draw images from captions with an ONNX export of a t2igan model: onnxruntime, numpy and Pillow only (no torch).

    t2igan export runs/demo --format onnx --out runs/demo_onnx          # once, where t2igan is installed
    python examples/onnx_sample.py runs/demo_onnx "this flower has pink petals and a yellow center" --out pink.png
    python examples/onnx_sample.py runs/demo_onnx "red petals" "blue petals" --seeds 0-7 --out grid.png

One grid row per caption, one column per seed. z (and StackGAN's CA noise ε) are drawn with numpy from each seed, so
a caption and a seed always give the same image here — not the same image as `t2igan sample`, whose z comes from
torch's generator. The tokenisation (characters for the char-CNN-RNN, words for the word-LSTM) is the few lines of
`tokenize` below, driven by ``text_encoder.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def fold_ascii(text: str, spec: dict) -> str:
    """Lower-case ASCII with single spaces, as t2igan's char-CNN-RNN reads text."""
    text = "".join(spec["replace"].get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(text.lower().split())


def tokenize_words(captions: list[str], spec: dict) -> np.ndarray:
    """Captions → int64 word indices [N, longest caption] (0 = padding; 2 + the position in vocab; 1 = unknown)."""
    index = {w: i + 2 for i, w in enumerate(spec["vocab"])}
    pattern = re.compile(spec["pattern"])
    rows = [[index.get(w, spec["unknown_index"]) for w in pattern.findall(fold_ascii(c, spec))] for c in captions]
    rows = [(r or [spec["unknown_index"]])[: spec["max_words"]] for r in rows]
    out = np.full((len(rows), max(len(r) for r in rows)), spec["padding_index"], dtype=np.int64)
    for row, ids in enumerate(rows):
        out[row, : len(ids)] = ids
    return out


def tokenize(captions: list[str], spec: dict) -> np.ndarray:
    """Captions → int64 character indices [N, max_len] (0 = padding; 1 + the last position in the alphabet)."""
    if spec["type"] == "word-rnn":
        return tokenize_words(captions, spec)
    index = {ch: i + 1 for i, ch in enumerate(spec["alphabet"])}
    out = np.zeros((len(captions), spec["max_len"]), dtype=np.int64)
    for row, caption in enumerate(captions):
        ids = [index[ch] for ch in fold_ascii(caption, spec) if ch in index][: spec["max_len"]]
        out[row, : len(ids)] = ids
    return out


class OnnxT2I:
    """The exported generator and text encoder of one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.info = json.loads((self.folder / "onnx_model.json").read_text(encoding="utf-8"))
        self.generator = ort.InferenceSession(str(self.folder / self.info["generator"]["file"]))
        te = self.info["text_encoder"]
        self.text_encoder = ort.InferenceSession(str(self.folder / te["file"])) if te["file"] else None
        self.spec = json.loads((self.folder / te["tokenizer"]).read_text(encoding="utf-8")) if te["file"] else None

    def encode(self, captions: list[str]) -> np.ndarray:
        if self.text_encoder is None:
            raise SystemExit(f"this export has no text encoder ({self.info['text_encoder']['type']}): pass text_emb")
        return self.text_encoder.run(None, {"tokens": tokenize(captions, self.spec)})[0]

    def generate(self, captions: list[str], seeds: list[int]) -> np.ndarray:
        """uint8 images [len(captions) · len(seeds), S, S, 3], caption-major."""
        g = self.info["generator"]
        feeds: dict[str, np.ndarray] = {}
        width = g["z_dim"] + sum(g["eps_dims"])
        noise = [np.random.default_rng(s).standard_normal(width).astype(np.float32) for s in seeds]
        noise = np.tile(np.stack(noise), (len(captions), 1))  # the same z for a seed in every row
        feeds["z"] = noise[:, : g["z_dim"]]
        start = g["z_dim"]
        for k, d in enumerate(g["eps_dims"]):
            feeds[f"eps_{k}"] = noise[:, start : start + d]
            start += d
        if g["text_dim"]:
            feeds["text_emb"] = np.repeat(self.encode(captions), len(seeds), axis=0).astype(np.float32)
        image = self.generator.run(None, feeds)[-1]  # the finest stage
        return (np.clip(image, -1, 1) * 127.5 + 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)


def grid(images: np.ndarray, ncol: int, pad: int = 2) -> Image.Image:
    n, s = images.shape[0], images.shape[1]
    nrow = (n + ncol - 1) // ncol
    canvas = np.full((nrow * (s + pad) + pad, ncol * (s + pad) + pad, 3), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        canvas[pad + r * (s + pad) : pad + r * (s + pad) + s, pad + c * (s + pad) : pad + c * (s + pad) + s] = im
    return Image.fromarray(canvas)


def parse_seeds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="a folder written by `t2igan export MODEL --format onnx --out FOLDER`")
    ap.add_argument("captions", nargs="+")
    ap.add_argument("--seeds", default="0-3", help="e.g. 0-7 or 1,5,9 (default 0-3)")
    ap.add_argument("--out", default="onnx_samples.png")
    args = ap.parse_args(argv)
    model = OnnxT2I(args.folder)
    seeds = parse_seeds(args.seeds)
    images = model.generate(args.captions, seeds)
    grid(images, len(seeds)).save(args.out)
    print(f"wrote {args.out}: {len(args.captions)} caption(s) × {len(seeds)} seed(s), {images.shape[1]} px")


if __name__ == "__main__":
    main(sys.argv[1:])
