"""Generation: the `T2IPipeline` (captions → images), interpolation strips and style transfer (Reed et al. 2016)."""

from t2igan.sampling.pipeline import T2IPipeline, T2IPipelineOutput
from t2igan.sampling.registry import register_generator

__all__ = ["T2IPipeline", "T2IPipelineOutput", "register_generator"]
