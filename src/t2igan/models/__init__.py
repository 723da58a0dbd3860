"""t2igan.models: the networks, one file per paper (no training logic).

Importing the package imports every family, so each generator class is registered for
``t2igan.utils.pretrained.load_pretrained`` (a pretrained folder names its class; only registered classes load).
"""

from t2igan.models import reed, stackgan, stackganpp, style  # noqa: F401  (registers the classes)
