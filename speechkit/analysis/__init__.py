"""Analysis of trained models: PAPA (probing with constant attention)."""

from speechkit.analysis.papa import (
                                     ProbedAttention,
                                     head_distances,
                                     probed_copy,
                                     record_average_attention,
                                     select_heads,
                                     set_constant_heads,
)
from speechkit.analysis.probe import papa_probe, pooled_features, probe_accuracy

__all__ = ["ProbedAttention", "probed_copy", "record_average_attention", "head_distances", "select_heads",
           "set_constant_heads", "papa_probe", "pooled_features", "probe_accuracy"]
