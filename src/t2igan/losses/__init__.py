"""Loss functions, each citing its paper: GAN / GAN-CLS / GAN-INT (Reed et al. 2016), hinge + MA-GP (DF-GAN)."""

from t2igan.losses.gan import GanClsLoss, HingeLoss, interpolate_embeddings, matching_aware_gp

__all__ = ["GanClsLoss", "HingeLoss", "interpolate_embeddings", "matching_aware_gp"]
