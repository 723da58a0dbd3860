"""t2igan.text — φ(t): the text encoders every model conditions on.

``load_text_encoder("minilm" | folder)`` returns a ``TextEncoder`` whose ``encode(list[str])`` gives ``[N, dim]``:
the char-CNN-RNN of Reed et al., CVPR 2016 (trained with the DS-SJE loss, ``train_sje``) or its word-level sibling
(``WordRnn``, the paper's word-LSTM), the pretrained
all-MiniLM-L6-v2 sentence encoder (extra ``t2igan[sentence]``), or a marker for published precomputed embeddings.
"""

from t2igan.text.base import CaptionTruncatedWarning, TextEncoder, fold_ascii, load_text_encoder
from t2igan.text.cache import embedding_key, encode_captions
from t2igan.text.char_cnn_rnn import CharCnnRnn, CharCnnRnnConfig
from t2igan.text.precomputed import PrecomputedEmbeddings
from t2igan.text.sje import ds_sje_loss
from t2igan.text.sje_image import SjeFeatureEncoder, SjeImageEncoder, load_sje_image_encoder
from t2igan.text.sje_trainer import SjeTrainConfig, ensure_char_cnn_rnn, load_sje, make_train_config, train_sje
from t2igan.text.word_rnn import WordRnn, WordRnnConfig
from t2igan.text.zero_shot import zero_shot_accuracy

__all__ = [
    "CaptionTruncatedWarning",
    "CharCnnRnn",
    "CharCnnRnnConfig",
    "PrecomputedEmbeddings",
    "SjeFeatureEncoder",
    "SjeImageEncoder",
    "SjeTrainConfig",
    "TextEncoder",
    "WordRnn",
    "WordRnnConfig",
    "ds_sje_loss",
    "embedding_key",
    "encode_captions",
    "ensure_char_cnn_rnn",
    "fold_ascii",
    "load_sje",
    "load_sje_image_encoder",
    "load_text_encoder",
    "make_train_config",
    "train_sje",
    "zero_shot_accuracy",
]
