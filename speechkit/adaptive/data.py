"""Labelled utterances of an Expresso-layout corpus (the real one or the synthetic mini-Expresso) for the
classification tasks of early-exit classifiers and probes: speaking style and speaker."""

from __future__ import annotations

import os

import torch

__all__ = ["read_utterances", "TASKS"]

TASKS = ("style", "speaker")


def read_utterances(root: str | os.PathLike, split: str, *, sample_rate: int = 16000, limit: int | None = None
                    ) -> list[dict]:
    """The read-speech utterances of one split (``splits/{split}.txt``) of an Expresso root.

    Args:
        root: corpus root (``audio_48khz/``, ``splits/``), e.g. ``speechkit prepare mini-expresso``'s output.
        split: ``train``, ``dev`` or ``test``.
        sample_rate: resample to this rate.
        limit: keep the first ``limit`` utterances.

    Returns:
        dicts with ``id``, ``wav`` (``(samples,)`` float32), ``speaker``, ``style``; dialogue files are skipped.
    """
    from speechkit.audio.io import load
    from speechkit.data.corpora.expresso import audio_path, parse_stem, read_splits

    out = []
    for entry in read_splits(root)[split]:
        info = parse_stem(entry.stem)
        if info.kind != "read":
            continue
        wav, _ = load(audio_path(root, entry.stem), sample_rate)
        out.append({"id": entry.stem, "wav": torch.as_tensor(wav).reshape(-1), "speaker": info.speaker,
                    "style": info.style})
        if limit is not None and len(out) >= limit:
            break
    return out
