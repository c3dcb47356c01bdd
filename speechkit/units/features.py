"""Feature readers by name, and frame sampling for k-means training."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["build_reader", "sample_frames"]


def build_reader(features: str, checkpoint: str | os.PathLike | None = None, layer: int = 6):
    """``"mfcc"`` -> :class:`MfccFeatureReader`; ``"hubert"`` -> :class:`HubertFeatureReader` of ``checkpoint``."""
    if features == "mfcc":
        from speechkit.units.mfcc import MfccFeatureReader

        return MfccFeatureReader()
    if features == "hubert":
        from speechkit.units.hubert import HubertFeatureReader

        if checkpoint is None:
            raise ValueError("features='hubert' needs a checkpoint path")
        return HubertFeatureReader.from_pretrained(checkpoint, layer=layer)
    raise ValueError(f"features must be 'mfcc' or 'hubert'. Found {features!r}")


def _frames_of(item: dict, reader) -> float:
    """About how many feature frames ``item`` gives: its samples are at the file's rate, the hop at the reader's."""
    from speechkit.audio import io as audio_io

    if item["num_samples"] <= 0:
        return 0.0
    try:
        rate = audio_io.info(item["path"]).sample_rate
    except audio_io.AudioError:
        return 0.0
    return item["num_samples"] * reader.expected_sample_rate / rate / reader.code_hop_size


def sample_frames(reader, source: str | os.PathLike, max_frames: int, *, seed: int = 0, workers: int = 2,
                  progress: bool = True) -> np.ndarray:
    """Features of a corpus, subsampled to at most ``max_frames`` frames (uniformly, seeded) for k-means.

    Every utterance is read (in id order) and contributes frames in proportion to its length.
    """
    from tqdm import tqdm

    from speechkit.audio.io import iter_audio
    from speechkit.units.corpus import list_corpus

    items = list_corpus(source)
    total = sum(_frames_of(i, reader) for i in items)
    keep = min(1.0, max_frames / max(total, 1))
    rng = np.random.default_rng(seed)
    chunks = []
    stream = iter_audio(items, reader.expected_sample_rate, workers=workers)
    bar = tqdm(stream, total=len(items), desc="features", unit="utt", disable=None if progress else True)
    for item in bar:
        if "error" in item:
            continue
        try:
            feats = reader(item["wav"]).numpy()
        except ValueError:
            continue  # too short for one frame
        chunks.append(feats[rng.random(len(feats)) < keep])
    if not chunks:
        raise ValueError(f"{source}: no frames could be computed")
    frames = np.concatenate(chunks)
    return frames[rng.permutation(len(frames))[:max_frames]] if len(frames) > max_frames else frames

