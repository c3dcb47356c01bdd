"""``SpeechEncoder``: waveform -> units, durations, dense features and (optionally) F0, as textlesslib does it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from speechkit.units.dedup import deduplicate, regrid
from speechkit.units.hubert.reader import HubertFeatureReader
from speechkit.units.kmeans import KMeansQuantizer

__all__ = ["SpeechEncoder", "deduplicate", "regrid"]


class SpeechEncoder(nn.Module):
    """Dense model + quantiser (+ deduplication, + F0): textlesslib's ``SpeechEncoder`` contract.

    Args:
        reader: dense feature reader (``expected_sample_rate``, ``code_hop_size``).
        quantizer: k-means over the reader's features.
        deduplicate: merge repeated units, returning their durations (else every duration is 1).
        need_f0: also return F0 per unit (Hz, pYIN, 0 = unvoiced), aligned with ``units``.

    Example:
        >>> enc = SpeechEncoder(HubertFeatureReader.from_pretrained("hubert.pt", layer=6),
        ...                     KMeansQuantizer.from_pretrained("km.bin"))
        >>> out = enc(wav, sample_rate=48000)   # resampled to enc.expected_sample_rate first
        >>> out["units"], out["durations"], out["dense"].shape
    """

    def __init__(self, reader: HubertFeatureReader, quantizer: KMeansQuantizer, deduplicate: bool = True,
                 need_f0: bool = False):
        super().__init__()
        if reader.dim != quantizer.dim:
            raise ValueError(f"quantizer dim {quantizer.dim} does not match the reader's feature dim {reader.dim}")
        self.reader, self.quantizer = reader, quantizer
        self.deduplicate, self.need_f0 = deduplicate, need_f0

    @property
    def expected_sample_rate(self) -> int:
        return self.reader.expected_sample_rate

    @property
    def code_hop_size(self) -> int:
        return self.reader.code_hop_size

    @property
    def frame_rate(self) -> float:
        return self.reader.frame_rate

    @property
    def vocab_size(self) -> int:
        return self.quantizer.vocab_size

    def _prepare(self, wav: torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() == 2:  # (channels, samples): mixed down, as textlesslib does
            wav = wav.mean(0)
        if sample_rate is not None and sample_rate != self.expected_sample_rate:
            from speechkit.audio.io import resample

            wav = resample(wav, sample_rate, self.expected_sample_rate)
        return wav

    def _streams(self, wav: torch.Tensor, dense: torch.Tensor) -> dict[str, torch.Tensor]:
        frames = self.quantizer(dense)
        if self.deduplicate:
            units, durations = deduplicate(frames)
        else:
            units, durations = frames, torch.ones_like(frames)
        out = {"units": units, "durations": durations, "dense": dense}
        if self.need_f0:
            from speechkit.units.f0 import frame_f0, unit_f0

            f0 = frame_f0(wav, self.expected_sample_rate, self.code_hop_size, len(frames))
            out["f0"] = unit_f0(f0, durations)
        return out

    def forward(self, wav: torch.Tensor, sample_rate: int | None = None) -> dict[str, torch.Tensor]:
        """Encodes one utterance.

        Args:
            wav: ``(samples,)`` or ``(channels, samples)``.
            sample_rate: rate of ``wav``; ``None`` means it is already :attr:`expected_sample_rate`.

        Returns:
            ``{"units": (N,) int64, "durations": (N,) int64, "dense": (frames, dim), "f0": (N,) if need_f0}``.
        """
        wav = self._prepare(wav, sample_rate)
        return self._streams(wav, self.reader(wav))

    def encode_batch(self, wavs: list[torch.Tensor], sample_rates: list[int | None] | None = None):
        """Encodes several utterances in one padded batch; each result equals :meth:`forward`'s."""
        rates = sample_rates or [None] * len(wavs)
        wavs = [self._prepare(w, r) for w, r in zip(wavs, rates, strict=True)]
        return [self._streams(w, d) for w, d in zip(wavs, self.reader.forward_batch(wavs), strict=True)]

    # ---------------------------------------------------------------- our bundle format
    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Writes ``hubert/`` (model), ``kmeans.safetensors`` and ``encoder.json`` (layer, dedup, f0); an MFCC
        k-means encoder (the first HuBERT iteration's targets, a baseline) writes its MFCC settings instead of a
        model."""
        from speechkit.units.mfcc import MfccFeatureReader
        from speechkit.utils.files import atomic_open

        out = Path(folder)
        meta = {"kind": "speechkit-speech-encoder"}
        if isinstance(self.reader, MfccFeatureReader):
            out.mkdir(parents=True, exist_ok=True)
            meta["mfcc"] = {"sample_rate": self.reader.expected_sample_rate, "hop_size": self.reader.code_hop_size}
        else:
            from speechkit.units.hubert.factory import save_hubert

            save_hubert(out / "hubert", self.reader.model, self.reader.config)
            meta.update(hubert="hubert", layer=self.reader.layer)
        self.quantizer.save(out / "kmeans.safetensors")
        with atomic_open(out / "encoder.json") as f:
            json.dump({**meta, "kmeans": "kmeans.safetensors", "deduplicate": self.deduplicate,
                       "need_f0": self.need_f0}, f, indent=2)
        return out

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None, **overrides) -> SpeechEncoder:
        """Loads a folder written by :meth:`save_pretrained`, or a model card by name (through
        :mod:`speechkit.hub`: e.g. ``"hubert-base-ls960-kmeans-100"`` = the dense model + its k-means file).
        Keyword ``overrides`` (``deduplicate``, ``need_f0``) replace the saved choices; ``device`` and ``dtype``
        as :func:`speechkit.utils.checkpoint.place` (``dtype`` sets the HuBERT's autocast).

        Raises:
            CheckpointError: a file is missing or unreadable.
            HubError: an unknown name, or files that cannot be fetched (offline: says where to put them).
        """
        from speechkit.utils.checkpoint import place

        return place(cls._load(name_or_path, **overrides), device, dtype)

    @classmethod
    def _load(cls, name_or_path: str | os.PathLike, **overrides) -> SpeechEncoder:
        from speechkit.utils.checkpoint import CheckpointError

        d = Path(name_or_path)
        if not d.exists() and not os.path.isabs(str(name_or_path)):
            return cls._from_card(str(name_or_path), **overrides)
        meta_path = d / "encoder.json"
        if not meta_path.is_file():
            raise CheckpointError(f"{d}: no encoder.json (a speechkit speech-encoder folder holds encoder.json, "
                                  "hubert/ and kmeans.safetensors)")
        from speechkit.utils.files import loading, read_json

        with loading(d, "speech-encoder folder", CheckpointError):
            meta = read_json(meta_path, CheckpointError)
            if meta.get("kind") == "pocketsphinx-phones":  # phones of pocketsphinx's en-us model, no weights here
                from speechkit.units.phones import PhoneEncoder

                return PhoneEncoder(**{"deduplicate": meta.get("deduplicate", True), **overrides})
            for key in ("kmeans", *(() if "mfcc" in meta else ("hubert", "layer"))):
                if key not in meta:
                    raise CheckpointError(f"{meta_path}: no {key!r} entry")
            if "mfcc" in meta:
                from speechkit.units.mfcc import MfccFeatureReader

                reader = MfccFeatureReader(**meta["mfcc"])
            else:
                reader = HubertFeatureReader.from_pretrained(d / meta["hubert"], layer=int(meta["layer"]))
            quantizer = KMeansQuantizer.from_pretrained(d / meta["kmeans"])
            options = {"deduplicate": meta.get("deduplicate", True), "need_f0": meta.get("need_f0", False),
                       **overrides}
            return cls(reader, quantizer, **options)

    @classmethod
    def _from_card(cls, name: str, **overrides) -> SpeechEncoder:
        from speechkit import hub

        card = hub.load_card(name)
        if card.path is not None:  # our own bundle: a folder holding an encoder
            folder = hub.fetch(name)["folder"]
            return cls.from_pretrained(folder / "encoder" if (folder / "encoder").is_dir() else folder, **overrides)
        if card.kind != "speech-encoder" or not card.requires:
            raise hub.HubError(f"card {name!r} is a {card.kind}, not a speech encoder (dense model + k-means)")
        dense = hub.fetch(card.requires[0])["checkpoint"]
        reader = HubertFeatureReader.from_pretrained(dense, layer=int(card.layer))
        quantizer = KMeansQuantizer.from_pretrained(hub.fetch(name)["kmeans"])
        return cls(reader, quantizer, **{"deduplicate": True, "need_f0": False, **overrides})
