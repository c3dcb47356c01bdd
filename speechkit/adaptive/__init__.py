"""Adaptive inference: early-exit classifiers (SWEET, shared early exit, multi-model) over HuBERT-style encoders,
with confidence-threshold inference and speed-accuracy sweeps."""

from speechkit.adaptive.config import MODES, EarlyExitConfig
from speechkit.adaptive.factory import EarlyExitStyleClassifier, build_early_exit, load_early_exit, save_early_exit
from speechkit.adaptive.model import EarlyExitClassifier, EarlyExitResult, ExitHead
from speechkit.adaptive.train import exit_probabilities, threshold_sweep, train_early_exit

__all__ = ["MODES", "EarlyExitConfig", "EarlyExitClassifier", "EarlyExitResult", "ExitHead", "build_early_exit",
           "save_early_exit", "load_early_exit", "EarlyExitStyleClassifier", "train_early_exit",
           "exit_probabilities", "threshold_sweep"]
