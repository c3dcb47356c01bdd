"""Phone units from an acoustic model trained on real speech: pocketsphinx's US English model as a teacher.

speechkit's own HuBERTs learn from synthetic voices only; pocketsphinx's ``en-us`` acoustic model (shipped in its
wheel, trained on recordings of many real speakers) already knows real voices. :class:`PhoneEncoder` decodes an
utterance with that model under its phone language model (pocketsphinx's ``allphone`` search: phones without words
or a dictionary) and gives the recognised phones as units on the 50 Hz grid of the other encoders (the phone at
the middle of each 20 ms frame), deduplicated with durations::

    >>> enc = PhoneEncoder()                     # or: python -m speechkit.units.phones DIR (a loadable folder)
    >>> out = enc(wav, sample_rate=16000)        # {"units": (N,), "durations": (N,)}
    >>> [PHONES[u] for u in out["units"][:6]]
    ['SIL', 'EY', 'JH', 'IH', 'N', 'G']

The vocabulary is fixed (:data:`PHONES`: silence, the 39 ARPAbet phones of CMUdict, and pocketsphinx's two filler
models), so units mean the same phone in every corpus. Each utterance is decoded on its own (cepstral mean
re-initialised), so units do not depend on what was encoded before.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from speechkit.units.dedup import deduplicate

__all__ = ["PhoneEncoder", "PHONES"]

PHONES: tuple[str, ...] = (
    "SIL", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
    "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
    "+NSN+", "+SPN+",
)
_INDEX = {p: i for i, p in enumerate(PHONES)}


class PhoneEncoder(nn.Module):
    """Recognised phones of pocketsphinx's en-us model as 50 Hz units (the encoder interface of
    :class:`~speechkit.units.SpeechEncoder`: ``vocab_size``, ``code_hop_size``, ``expected_sample_rate``, call).

    Args:
        deduplicate: merge repeated frame units and return their durations (as the HuBERT encoders do).
        beam: pocketsphinx's search beams (``beam`` and ``pbeam``); wider is slower and slightly better.
        lw: weight of the phone language model against the acoustics.
        need_f0: must be ``False`` (accepted so the loaders' ``need_f0=False`` passes through).
    """

    expected_sample_rate = 16000
    code_hop_size = 320
    frame_rate = 50.0

    def __init__(self, deduplicate: bool = True, beam: float = 1e-20, lw: float = 2.0, need_f0: bool = False):
        super().__init__()
        if need_f0:
            raise ValueError("PhoneEncoder has no F0 stream (need_f0=True): F0-conditioned vocoders need a HuBERT "
                             "encoder")
        from pocketsphinx import Decoder, get_model_path

        model = Path(get_model_path())
        self.deduplicate = deduplicate
        self._decoder = Decoder(samprate=self.expected_sample_rate, loglevel="FATAL", lm=None,
                                allphone=str(model / "en-us" / "en-us-phone.lm.bin"), beam=beam, pbeam=beam, lw=lw)

    @property
    def vocab_size(self) -> int:
        return len(PHONES)

    def save_pretrained(self, folder) -> Path:
        """Writes ``encoder.json`` (kind ``pocketsphinx-phones``, the phone list): a speech-encoder folder that
        :meth:`SpeechEncoder.from_pretrained <speechkit.units.SpeechEncoder.from_pretrained>` loads as this encoder
        (the acoustic model itself comes with pocketsphinx)."""
        from speechkit.utils.files import atomic_open

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "encoder.json") as f:
            json.dump({"kind": "pocketsphinx-phones", "model": "en-us", "phones": list(PHONES),
                       "deduplicate": self.deduplicate}, f, indent=2)
        return out

    def frame_phones(self, wav: torch.Tensor) -> torch.Tensor:
        """``(samples,)`` float audio at 16 kHz -> ``(samples // 320,)`` phone ids, one per 20 ms frame (the phone
        pocketsphinx recognised at the frame's middle; silence where it recognised none)."""
        x = wav.detach().float().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
        if x.ndim != 1:
            raise ValueError(f"wav must be 1-D (samples,). Found shape {x.shape}")
        n = len(x) // self.code_hop_size
        if n == 0:
            return torch.zeros(0, dtype=torch.long)
        x = np.clip(np.nan_to_num(x), -1.0, 1.0)
        if float(np.abs(x).max()) < 1e-4:  # digital silence (-80 dBFS peak): the search would invent a filler
            return torch.zeros(n, dtype=torch.long)
        labels = np.zeros(2 * n + 2, dtype=np.int64)  # pocketsphinx's 10 ms frames; 0 = SIL
        pcm = (x * 32767).astype("<i2").tobytes()
        d = self._decoder
        d.reinit_feat()  # each utterance's cepstral mean its own: units do not depend on what came before
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        for seg in d.seg():
            i = _INDEX.get(seg.word, 0)
            if i:
                labels[max(seg.start_frame, 0): max(seg.end_frame + 1, 0)] = i
        return torch.from_numpy(labels[1: 2 * n: 2].copy())  # frame t covers 10 ms frames 2t, 2t+1: its middle

    @torch.inference_mode()
    def forward(self, wav: torch.Tensor, sample_rate: int | None = None) -> dict[str, torch.Tensor]:
        """Encodes one utterance (``(samples,)`` or ``(channels, samples)``, resampled from ``sample_rate``).

        Returns:
            ``{"units": (N,) int64, "durations": (N,) int64}``.
        """
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() == 2:
            wav = wav.mean(0)
        if sample_rate is not None and sample_rate != self.expected_sample_rate:
            from speechkit.audio.io import resample

            wav = resample(wav, sample_rate, self.expected_sample_rate)
        frames = self.frame_phones(wav)
        if self.deduplicate:
            units, durations = deduplicate(frames)
        else:
            units, durations = frames, torch.ones_like(frames)
        return {"units": units, "durations": durations}

    def encode_batch(self, wavs: list[torch.Tensor], sample_rates: list[int | None] | None = None):
        """One :meth:`forward` per utterance (pocketsphinx decodes one at a time)."""
        rates = sample_rates or [None] * len(wavs)
        return [self(w, r) for w, r in zip(wavs, rates, strict=True)]


if __name__ == "__main__":  # python -m speechkit.units.phones DIR: writes a speech-encoder folder of this encoder
    import sys

    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python -m speechkit.units.phones DIR  (writes DIR/encoder.json)")
    print(PhoneEncoder().save_pretrained(sys.argv[1]) / "encoder.json")
