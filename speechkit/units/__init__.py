"""Speech -> units: HuBERT features, k-means quantisation, deduplication, F0, and the corpus encoder."""

from speechkit.units.encoder import SpeechEncoder, deduplicate, regrid
from speechkit.units.hubert import HubertFeatureReader
from speechkit.units.kmeans import KMeansQuantizer

__all__ = ["HubertFeatureReader", "KMeansQuantizer", "SpeechEncoder", "deduplicate", "regrid"]
