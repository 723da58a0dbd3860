"""The deep symmetric structured joint embedding (DS-SJE) loss of Reed et al., CVPR 2016.

"Learning Deep Representations of Fine-Grained Visual Descriptions", §3.1. Images v and texts t are embedded by θ(v)
and φ(t); their compatibility is the dot product F(v, t) = θ(v)ᵀ φ(t). Classification is *class-level*: an image is
classified by the class whose texts score highest on average, and a text by the class whose images do (eq. 2–3):

    f_v(v) = argmax_y E_{t∼T(y)}[F(v, t)]        f_t(t) = argmax_y E_{v∼V(y)}[F(v, t)]

and the DS-SJE objective (eq. 4–6) sums a structured hinge (margin Δ = 1) over both directions:

    ℓ_v(v_n, t_n, y_n) = Σ_{y ≠ y_n} max(0, 1 + E_{t∼T(y)}[F(v_n, t)] − E_{t∼T(y_n)}[F(v_n, t)])
    ℓ_t(v_n, t_n, y_n) = Σ_{y ≠ y_n} max(0, 1 + E_{v∼V(y)}[F(v, t_n)] − E_{v∼V(y_n)}[F(v, t_n)])
    L = 1/(N·C) Σ_n [ℓ_v + ℓ_t]

The class expectations are minibatch averages over the samples of each class present in the batch. As in the
released code (``sje_hinge``), violations are summed over wrong classes (the paper writes a max) and normalised by
batch size × number of classes; with one sample per class per batch this is exactly that code.
"""

from __future__ import annotations

import torch


def class_means(emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class mean of ``emb [N, D]`` → (``[C, D]`` means in sorted class order, ``[N]`` each row's class)."""
    classes, pos = torch.unique(labels, sorted=True, return_inverse=True)
    sums = torch.zeros(len(classes), emb.shape[1], dtype=emb.dtype, device=emb.device).index_add_(0, pos, emb)
    counts = torch.bincount(pos, minlength=len(classes)).to(emb.dtype).unsqueeze(1)
    return sums / counts, pos


def _structured_hinge(queries: torch.Tensor, prototypes: torch.Tensor, pos: torch.Tensor, margin: float):
    """Σ_{y≠y_n} max(0, margin + s_ny − s_ny_n) for s = queries · prototypesᵀ; returns (sum, top-1 hits)."""
    scores = queries @ prototypes.T  # [N, C]  F(v, t) averaged per class = dot with the class mean
    true = scores.gather(1, pos[:, None])  # [N, 1]
    viol = (margin + scores - true).clamp_min(0)
    viol = viol.scatter(1, pos[:, None], 0.0)  # no term for the true class
    hits = (scores.argmax(dim=1) == pos).sum()
    return viol.sum(), hits


def ds_sje_loss(
    img_emb: torch.Tensor, txt_emb: torch.Tensor, labels: torch.Tensor, margin: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """DS-SJE loss (Reed et al. 2016, eq. 4–6) for matched pairs ``(img_emb[n], txt_emb[n])`` of class ``labels[n]``.

    Returns ``(loss, stats)`` where stats holds the two directions' losses and in-batch top-1 accuracies
    (``acc_img``: image → class by class-mean text; ``acc_txt``: text → class by class-mean image).
    """
    if img_emb.shape != txt_emb.shape or img_emb.dim() != 2 or labels.shape != img_emb.shape[:1]:
        raise ValueError(f"ds_sje_loss: shapes {tuple(img_emb.shape)}, {tuple(txt_emb.shape)}, {tuple(labels.shape)}")
    txt_proto, pos = class_means(txt_emb, labels)
    img_proto, _ = class_means(img_emb, labels)
    n, c = img_emb.shape[0], txt_proto.shape[0]
    loss_v, hits_v = _structured_hinge(img_emb, txt_proto, pos, margin)  # image → classes (via class texts)
    loss_t, hits_t = _structured_hinge(txt_emb, img_proto, pos, margin)  # text → classes (via class images)
    denom = n * c
    loss = (loss_v + loss_t) / denom
    stats = {
        "loss_img": float(loss_v.detach()) / denom,
        "loss_txt": float(loss_t.detach()) / denom,
        "acc_img": float(hits_v) / n,
        "acc_txt": float(hits_t) / n,
    }
    return loss, stats
