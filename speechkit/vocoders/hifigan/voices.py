"""Speaker embeddings stored with a vocoder: the mean resemblyzer d-vector of each vocoder speaker's training speech.

With them, the vocoder voice closest to an input is one speaker embedding of the input away (a few milliseconds
per second of audio), instead of synthesising the input once per vocoder speaker and comparing spectra. The file is
``speaker_embeddings.json`` beside the vocoder's weights::

    {"encoder": "resemblyzer-ge2e", "dim": 256,
     "speakers": {"us1": {"embedding": [...256 floats...], "utterances": 20, "seconds": 61.3}, ...}}

Official checkpoints have no such file; :class:`~speechkit.pipeline.Resynthesizer` then falls back to analysis by
synthesis.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from speechkit.vocoders.errors import VocoderError

__all__ = ["FILENAME", "ENCODER", "SpeakerTable", "compute_speaker_table", "read_speaker_table"]

FILENAME = "speaker_embeddings.json"
#: the speaker encoder the stored vectors come from (speechkit.metrics.speaker.SpeakerEncoder)
ENCODER = "resemblyzer-ge2e"


class SpeakerTable:
    """Unit-norm speaker embeddings by vocoder speaker name.

    Args:
        embeddings: name -> ``(dim,)`` vector (normalised here).
        utterances: name -> number of utterances averaged (informative).
        seconds: name -> seconds of speech averaged (informative).
        encoder: the speaker encoder the vectors come from.
    """

    def __init__(self, embeddings: Mapping[str, np.ndarray], utterances: Mapping[str, int] | None = None,
                 seconds: Mapping[str, float] | None = None, encoder: str = ENCODER):
        if not embeddings:
            raise VocoderError("a speaker table needs at least one speaker")
        dims = {np.asarray(v).shape for v in embeddings.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise VocoderError(f"speaker embeddings must be vectors of one length. Found shapes {sorted(dims)}")
        self.names = list(embeddings)
        m = np.stack([np.asarray(embeddings[n], dtype=np.float64) for n in self.names])
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        if not np.all(np.isfinite(m)) or np.any(norms == 0):
            raise VocoderError("speaker embeddings must be finite and non-zero")
        self.matrix = m / norms
        self.utterances = dict(utterances or {})
        self.seconds = dict(seconds or {})
        self.encoder = encoder

    def similarities(self, embedding: np.ndarray) -> dict[str, float]:
        """Cosine similarity of ``embedding`` to every speaker."""
        e = np.asarray(embedding, dtype=np.float64).reshape(-1)
        if e.shape[0] != self.matrix.shape[1]:
            raise VocoderError(f"embedding has {e.shape[0]} values, the table {self.matrix.shape[1]}")
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        return dict(zip(self.names, (self.matrix @ e).tolist(), strict=True))

    def closest(self, embedding: np.ndarray) -> str:
        """The speaker whose stored embedding is most similar to ``embedding``."""
        sims = self.similarities(embedding)
        return max(sims, key=sims.get)

    def to_json(self) -> str:
        return json.dumps({"encoder": self.encoder, "dim": int(self.matrix.shape[1]), "speakers": {
            n: {"embedding": [round(float(x), 7) for x in row], "utterances": self.utterances.get(n),
                "seconds": self.seconds.get(n)} for n, row in zip(self.names, self.matrix, strict=True)}}, indent=1)

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes ``folder/speaker_embeddings.json`` (atomically)."""
        from speechkit.utils.files import atomic_open

        path = Path(folder) / FILENAME
        with atomic_open(path) as f:
            f.write(self.to_json())
        return path


def read_speaker_table(folder: str | os.PathLike) -> SpeakerTable | None:
    """``folder/speaker_embeddings.json``, or ``None`` where the folder has none.

    Raises:
        VocoderError: the file is unreadable or malformed (the message names it).
    """
    path = Path(folder) / FILENAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        speakers = data["speakers"]
        table = SpeakerTable({n: np.asarray(v["embedding"], dtype=np.float64) for n, v in speakers.items()},
                             {n: v.get("utterances") for n, v in speakers.items()},
                             {n: v.get("seconds") for n, v in speakers.items()}, data.get("encoder", ENCODER))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise VocoderError(f"{path}: not a speaker-embedding file ({type(e).__name__}: {e})") from None
    if table.encoder != ENCODER:
        raise VocoderError(f"{path}: embeddings from {table.encoder!r}; speechkit compares {ENCODER!r} ones")
    return table


def compute_speaker_table(files_by_speaker: Mapping[str, Iterable[str | os.PathLike]], max_utterances: int = 20,
                          encoder=None) -> SpeakerTable:
    """Mean speaker embedding of each speaker's speech: ``max_utterances`` files of each, evenly spaced through its
    list (so a list grouped by style contributes every style).

    Args:
        files_by_speaker: vocoder speaker name -> audio files of that speaker (its training speech).
        max_utterances: files averaged per speaker.
        encoder: a :class:`~speechkit.metrics.speaker.SpeakerEncoder` (built if ``None``).

    Raises:
        VocoderError: a speaker has no readable file.
    """
    from speechkit.audio import io
    from speechkit.metrics.speaker import SpeakerEncoder

    encoder = encoder or SpeakerEncoder()
    embeddings, counts, seconds = {}, {}, {}
    for name, files in files_by_speaker.items():
        files = list(files)
        picked = sorted(set(np.linspace(0, len(files) - 1, min(max_utterances, len(files))).round().astype(int)))
        vectors, total = [], 0.0
        for f in (files[i] for i in picked if files):
            wav, sr = io.load(f, sample_rate=encoder.sample_rate)
            vectors.append(encoder.embed(wav, sr))
            total += len(wav) / sr
        if not vectors:
            raise VocoderError(f"speaker {name!r}: no audio to compute its embedding from")
        embeddings[name], counts[name], seconds[name] = np.mean(vectors, axis=0), len(vectors), round(total, 1)
    return SpeakerTable(embeddings, counts, seconds)
