"""Generation: the `T2IPipeline` (captions → images), interpolation strips and style transfer (Reed et al. 2016).

A generator class from outside the package is made loadable from pretrained folders with
``t2igan.utils.pretrained.register_pretrained(ConfigClass)`` (a class decorator).
"""

from t2igan.sampling.pipeline import T2IPipeline, T2IPipelineOutput

__all__ = ["T2IPipeline", "T2IPipelineOutput"]
