"""The project's Inception-v3: loads a user-supplied state dict, never downloads, marks non-standard weights."""

import pytest
import torch

from t2igan.metrics.inception import InceptionV3, load_inception
from t2igan.utils.errors import T2IError


def test_missing_weights_file_says_what_to_do(tmp_path):
    with pytest.raises(T2IError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        load_inception(tmp_path / "nope.pth")


def test_loads_state_dict_and_gives_pool3_and_logits(tmp_path):
    torch.manual_seed(0)
    state = {k: v for k, v in InceptionV3().state_dict().items() if "num_batches_tracked" not in k}
    state["AuxLogits.fc.weight"] = torch.zeros(1)  # torchvision files carry an aux head: ignored
    torch.save(state, tmp_path / "w.pth")
    model = load_inception(tmp_path / "w.pth")
    assert not model.standard and len(model.fingerprint) == 16
    with torch.no_grad():
        x = torch.zeros(1, 3, 299, 299)
        assert model.pool3(x).shape == (1, 2048) and model.logits(x).shape == (1, 1008)
    torch.save({"fc.weight": torch.zeros(3, 2048), "fc.bias": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(T2IError, match="do not fit"):
        load_inception(tmp_path / "bad.pth")
