"""How much of each attribute a caption names can be read off its text embedding, for new attribute combinations.

A linear probe (softmax regression on standardised embeddings, Adam, 300 full-batch steps, seed 0) is fitted per
attribute on the captions of *training* classes that name that attribute, and scored on the captions of the held-out
(unseen) classes that name it. A generator conditioned on the embedding can hardly draw an attribute the embedding
does not carry, so the unseen figure is a rough ceiling for the GAN's attribute accuracy on unseen captions (rough:
G is not linear). Synthetic flowers only (the captions' attributes come from their grammar). Prints one JSON line.

    python benchmarks/text_probe.py runs/demo/data/flowers                  # every embedding set of the cache
    python benchmarks/text_probe.py runs/demo/data/flowers --key char-cnn-rnn-7de94521472d212b
    python benchmarks/text_probe.py data/flowers128 --stackgan runs/sg1   # + Stage-I's CA: μ₀ and ĉ₀ = μ₀ + σ₀ε

``--stackgan RUN`` also probes what a StackGAN generator's Stage-I Conditioning Augmentation (StackGAN §3.2) hands
G: its mean μ₀ and one draw ĉ₀ = μ₀ + σ₀ ⊙ ε per caption (ε ~ N(0, I), seed 0), with σ₀'s mean and μ₀'s spread
over captions. Under the KL term (Eq. (2)) σ₀ → 1 while μ₀ spreads little, so ĉ₀ can carry far less than φ_t.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def probe(embeddings: np.ndarray, captions: list[list[str]], is_test: np.ndarray, steps: int = 300) -> dict:
    """Per attribute: linear-probe accuracy on seen-class captions (fit) and unseen-class captions (held out)."""
    import torch

    from t2igan.data.synthetic import ATTRIBUTES
    from t2igan.data.synthetic_captions import caption_attributes

    torch.manual_seed(0)
    rows = [(i, s) for i, caps in enumerate(captions) for s in caps]
    named = [caption_attributes(s) for _, s in rows]
    image_of = np.array([i for i, _ in rows])
    out: dict[str, dict[str, float | int]] = {}
    for name, values in ATTRIBUTES.items():
        keep = np.array([k for k, a in enumerate(named) if name in a])
        y = torch.tensor([values.index(named[k][name]) for k in keep])
        test = torch.from_numpy(is_test[image_of[keep]].astype(bool))
        x = torch.from_numpy(np.asarray(embeddings[keep], dtype=np.float32))
        x = (x - x[~test].mean(0)) / (x[~test].std(0) + 1e-6)
        lin = torch.nn.Linear(x.shape[1], len(values))
        opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-4)
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(lin(x[~test]), y[~test]).backward()
            opt.step()
        with torch.no_grad():
            hit = lin(x).argmax(1) == y
        out[name] = {
            "seen": round(float(hit[~test].float().mean()), 4),
            "unseen": round(float(hit[test].float().mean()), 4),
            "n_unseen": int(test.sum()),
        }
    return out


def ca_codes(run: Path, embeddings: np.ndarray, seed: int = 0) -> dict[str, object]:
    """Stage-I CA of the StackGAN export in ``run`` (a run folder or its ``pretrained/``) on ``embeddings``:
    ``{"mu0": μ₀, "c0": μ₀ + σ₀ ⊙ ε, "sigma_mean": mean σ₀, "mu_spread": μ₀'s std over captions, mean over dims}``."""
    import torch

    from t2igan.models.stackgan import ConditioningAugmentation
    from t2igan.sampling import T2IPipeline

    folder = run / "pretrained" if (run / "pretrained").is_dir() else run
    pipe = T2IPipeline.from_pretrained(folder)
    ca = getattr(getattr(pipe.generator, "stage1", None), "ca", None)
    if not isinstance(ca, ConditioningAugmentation):
        raise ValueError(f"{run}: not a StackGAN generator (no Stage-I conditioning augmentation)")
    x = torch.from_numpy(np.array(embeddings, dtype=np.float32))  # a writable copy of the memory map
    if x.shape[1] != ca.fc.in_features:
        raise ValueError(f"{run}: its CA reads {ca.fc.in_features}-d embeddings, these are {x.shape[1]}-d")
    eps = torch.randn(x.shape[0], ca.condition_dim, generator=torch.Generator().manual_seed(seed))
    ca.sample = True
    with torch.no_grad():
        c0, mu0, logvar = ca(x, eps=eps)
    return {
        "mu0": mu0.numpy(),
        "c0": c0.numpy(),
        "sigma_mean": round(float(torch.exp(0.5 * logvar).mean()), 4),
        "mu_spread": round(float(mu0.std(0).mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a synthetic-flowers folder (or its .t2igan_cache) with caption embeddings")
    ap.add_argument("--key", action="append", help="embedding key(s) in <cache>/embeddings (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stackgan", type=Path, help="a StackGAN run or export: also probe its Stage-I CA's μ₀ and ĉ₀")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cache = args.data if (args.data / "captions.json").is_file() else args.data / ".t2igan_cache"
    if not (cache / "captions.json").is_file():
        print(f"error: {args.data}: no prepared cache here (run `t2igan encode captions` on it first)", file=sys.stderr)
        return 2
    keys = args.key or sorted(p.stem for p in (cache / "embeddings").glob("*.npy"))
    if not keys:
        print(f"error: {cache}/embeddings: no caption embeddings (run `t2igan encode captions`)", file=sys.stderr)
        return 2
    captions = json.loads((cache / "captions.json").read_text())["captions"]
    is_test = np.load(cache / "is_test.npy")
    result: dict[str, object] = {"benchmark": "text_probe", "data": str(args.data), "probes": {}}
    for key in keys:
        meta_path = cache / "embeddings" / f"{key}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        emb = np.load(cache / "embeddings" / f"{key}.npy", mmap_mode="r")
        entry: dict[str, object] = {
            "encoder": meta.get("encoder_source", meta.get("encoder")),
            "attributes": probe(emb, captions, is_test),
        }
        if args.stackgan is not None:
            from t2igan.utils.errors import T2IError

            try:
                codes = ca_codes(args.stackgan, emb)
            except (ValueError, OSError, T2IError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            entry["stackgan"] = str(args.stackgan)
            entry["sigma_mean"], entry["mu_spread"] = codes["sigma_mean"], codes["mu_spread"]
            for name in ("mu0", "c0"):
                entry[f"attributes_{name}"] = probe(codes[name], captions, is_test)  # type: ignore[arg-type]
        result["probes"][key] = entry  # type: ignore[index]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
