"""rprec_sje on the text layer's DS-SJE encoders (untrained, tiny): runs, returns a protocol-named number."""

import numpy as np

from t2igan.metrics.context import EvalContext
from t2igan.metrics.registry import REGISTRY, load_all

from .conftest import oracle_generator


def test_rprec_sje_runs_with_the_text_layers_encoders(fake_cache, tmp_path):
    import torch

    from t2igan.text import CharCnnRnn, CharCnnRnnConfig, SjeImageEncoder
    from t2igan.text.sje_image import SjeImageConfig

    torch.manual_seed(0)
    text = CharCnnRnn(CharCnnRnnConfig(max_len=120, conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=8))
    image = SjeImageEncoder(SjeImageConfig(embed_dim=8, image_size=16, channels=(4, 8)))
    load_all()
    ctx = EvalContext(
        fake_cache, oracle_generator(fake_cache), n=20, sje=(text, image), progress=False, feature_cache_dir=tmp_path
    )
    res = REGISTRY["rprec_sje"].fn(ctx)
    assert 0.0 <= res["value"] <= 1.0 and np.isfinite(res["std"])
    assert res["protocol"] == "rprec_sje_20_test-eval" and res["candidates"] == 100
