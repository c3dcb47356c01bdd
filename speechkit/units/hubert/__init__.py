"""HuBERT-family encoders: config, model, factory, foreign-checkpoint interop and the feature reader."""

from speechkit.units.hubert.config import HubertConfig
from speechkit.units.hubert.factory import build_hubert, load_hubert, save_hubert
from speechkit.units.hubert.model import HubertModel
from speechkit.units.hubert.reader import HubertFeatureReader

__all__ = ["HubertConfig", "HubertModel", "HubertFeatureReader", "build_hubert", "load_hubert", "save_hubert"]
