"""Training infrastructure shared by every task: checkpoints (:mod:`.checkpoint`), torchrun/DDP helpers
(:mod:`.distributed`) and one solver module per task."""
