"""Configuration of an early-exit classifier (a keyword-only dataclass, validated)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EarlyExitConfig", "MODES"]

#: Training modes. ``sweet``: one backbone cut into segments, each exit's loss updates only its own segment (the
#: hidden state entering a segment is detached); ``early_exit``: one shared backbone, the exits' losses are summed
#: and every loss reaches every earlier layer; ``multi_model``: one independent backbone per exit, of growing depth.
MODES = ("sweet", "early_exit", "multi_model")


@dataclass(kw_only=True)
class EarlyExitConfig:
    """An early-exit classifier over a HuBERT-style encoder.

    Attributes:
        mode: one of :data:`MODES`.
        exit_layers: 1-based transformer layers after which a classifier sits, strictly increasing; the last one
            is the deepest layer used (layers above it are dropped).
        labels: class names, in the order of the classifiers' output rows.
        task: what the labels are (``"style"``, ``"speaker"``, ...), kept for the model card.
    """

    mode: str = "sweet"
    exit_layers: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    labels: list[str] = field(default_factory=list)
    task: str = "style"

    def validate(self, num_layers: int | None = None) -> None:
        """Raises ``ValueError`` naming the field, the rule and the value found.

        Args:
            num_layers: the encoder's depth; exits above it are rejected.
        """
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Found {self.mode!r}")
        e = list(self.exit_layers)
        if not e or e[0] < 1 or any(b <= a for a, b in zip(e, e[1:], strict=False)):
            raise ValueError(f"exit_layers must be strictly increasing layers >= 1. Found {e}")
        if num_layers is not None and e[-1] > num_layers:
            raise ValueError(f"exit_layers must be <= the encoder's {num_layers} layers. Found {e}")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be at least two distinct names. Found {self.labels}")
