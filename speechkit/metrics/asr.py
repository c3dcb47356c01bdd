"""Offline speech recognition for evaluation.

:class:`PocketSphinxASR` uses the en-us acoustic model, language model and dictionary that the ``pocketsphinx``
wheel ships, so it works without any download. It is weak on real conversational speech but a stable yardstick
for comparing synthetic speech before and after a model (the same decoder on both sides).

:class:`HFCTCASR` and :class:`WhisperASR` run a local Hugging Face model folder (a wav2vec2/HuBERT CTC model, or
Whisper) when a user has one; :func:`load_asr` picks the right class from a name or a folder.
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["PocketSphinxASR", "HFCTCASR", "WhisperASR", "load_asr"]


class PocketSphinxASR:
    """CMU PocketSphinx with its bundled en-us model.

    Args:
        words: closed-vocabulary (isolated-word) recognition: every file is decoded as exactly one of these words
            (a JSGF grammar) instead of with the language model; each must be in the pronouncing dictionary.
        **decoder_options: passed to ``pocketsphinx.Decoder`` (e.g. ``lm=``, ``dict=``, ``hmm=`` for other models).

    Example:
        >>> asr = PocketSphinxASR()
        >>> asr.transcribe_file("utt.wav")
        'please remember to close the window tomorrow'
    """

    sample_rate = 16000

    def __init__(self, words: list[str] | None = None, **decoder_options):
        from pocketsphinx import Decoder

        options = {"samprate": self.sample_rate, "loglevel": "FATAL", **decoder_options}
        self._decoder = Decoder(**options)
        self._options, self._aligner = options, None
        if words is not None:
            vocabulary = sorted({w.lower() for w in words})
            unknown = [w for w in vocabulary if self._decoder.lookup_word(w) is None]
            if not vocabulary or unknown:
                raise ValueError(f"words: {unknown or 'none given'}: not in the pronouncing dictionary "
                                 "(closed-vocabulary recognition needs words it can pronounce)")
            grammar = f"#JSGF V1.0;\ngrammar words;\npublic <w> = {' | '.join(vocabulary)};\n"
            self._decoder.add_jsgf_string("words", grammar)
            self._decoder.activate_search("words")

    def transcribe(self, wav: torch.Tensor | np.ndarray) -> str:
        """Transcribes ``(samples,)`` float audio at 16 kHz; returns lower-case words (may be empty)."""
        x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        if x.ndim != 1:
            raise ValueError(f"wav must be 1-D (samples,) at 16 kHz. Found shape {x.shape}")
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        d = self._decoder
        d.reinit_feat()  # forget the cepstral mean of earlier files: each file decodes as with a fresh decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    def transcribe_file(self, path: str | os.PathLike) -> str:
        """Loads ``path`` (any rate, stereo mixed down) and transcribes it."""
        from speechkit.audio import io as audio_io

        wav, _ = audio_io.load(path, sample_rate=self.sample_rate)
        return self.transcribe(wav)

    def align(self, wav: torch.Tensor | np.ndarray, text: str) -> list[tuple[str, float, float]]:
        """Forced alignment of ``text`` to ``(samples,)`` float audio at 16 kHz: the phones of the dictionary's
        pronunciation (ARPAbet, ``"_"`` for silence) as ``(phone, start_seconds, end_seconds)``, at pocketsphinx's
        10 ms frames. The phone labels of real recordings with transcripts (the real-speech phone probe).

        Raises:
            ValueError: a word of ``text`` is not in the pronouncing dictionary, or no alignment was found.
        """
        import re

        words = re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()
        unknown = [w for w in words if self._decoder.lookup_word(w) is None]
        if not words or unknown:
            raise ValueError(f"text: {unknown or 'no words'}: not in the pronouncing dictionary")
        x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        if x.ndim != 1:
            raise ValueError(f"wav must be 1-D (samples,) at 16 kHz. Found shape {x.shape}")
        if len(x) < self.sample_rate // 10:
            raise ValueError(f"audio of {len(x)} samples is too short to align (at least 0.1 s at 16 kHz)")
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        if self._aligner is None:  # its own decoder: alignment replaces the search of the one that transcribes
            from pocketsphinx import Decoder

            self._aligner = Decoder(**self._options)
        d = self._aligner
        try:
            d.set_align_text(" ".join(words))  # first pass: the words' segmentation
            d.reinit_feat()  # each file's cepstral mean its own, as in transcribe(): results do not depend on order
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            found = d.hyp() is not None
            if found:
                d.set_alignment()  # second pass: phones within the words (hyp() must not be asked after it: segfault)
                d.start_utt()
                d.process_raw(pcm, full_utt=True)
                d.end_utt()
                alignment = d.get_alignment()
                found = alignment is not None
        except RuntimeError:  # pocketsphinx: "Failed to stop utterance processing" when the search dies
            found = False
        if not found:
            self._aligner = None  # a fresh decoder for the next file
            raise ValueError(f"no alignment of {text!r} found in {len(x) / self.sample_rate:.2f} s of audio")
        out = []
        for word in alignment:
            for phone in word:
                name = "_" if phone.name == "SIL" else phone.name
                out.append((name, phone.start / 100, (phone.start + phone.duration) / 100))
        return out


def _as_numpy(wav) -> np.ndarray:
    x = wav.detach().cpu().float().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    if x.ndim != 1:
        raise ValueError(f"wav must be 1-D (samples,) at 16 kHz. Found shape {x.shape}")
    return x


class _FileMixin:
    sample_rate = 16000

    def transcribe_file(self, path: str | os.PathLike) -> str:
        """Loads ``path`` (any rate, stereo mixed down) and transcribes it."""
        from speechkit.audio import io as audio_io

        wav, _ = audio_io.load(path, sample_rate=self.sample_rate)
        return self.transcribe(wav)


class HFCTCASR(_FileMixin):
    """A local Hugging Face CTC model folder (``Wav2Vec2ForCTC``, ``HubertForCTC``, ... + its processor), greedy
    decoding, lower-cased output.

    Args:
        folder: the model folder (``config.json``, weights, tokenizer and feature-extractor files).
        device: ``"cpu"`` or ``"cuda"``.

    Example:
        >>> HFCTCASR("models/wav2vec2-base-960h").transcribe_file("utt.wav")
    """

    def __init__(self, folder: str | os.PathLike, device: str = "cpu"):
        from transformers import AutoModelForCTC, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModelForCTC.from_pretrained(str(folder), local_files_only=True).eval().to(device)
        self.sample_rate = int(getattr(self.processor.feature_extractor, "sampling_rate", 16000))
        self.device = device

    def transcribe(self, wav: torch.Tensor | np.ndarray) -> str:
        """Transcribes ``(samples,)`` float audio at :attr:`sample_rate`."""
        inputs = self.processor(_as_numpy(wav), sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(inputs.input_values.to(self.device)).logits
        return self.processor.batch_decode(logits.argmax(-1))[0].strip().lower()


class WhisperASR(_FileMixin):
    """A local Whisper folder (``WhisperForConditionalGeneration`` + processor), English transcription.

    Example:
        >>> WhisperASR("models/whisper-small.en").transcribe_file("utt.wav")
    """

    def __init__(self, folder: str | os.PathLike, device: str = "cpu", max_new_tokens: int = 200):
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.processor = WhisperProcessor.from_pretrained(str(folder), local_files_only=True)
        self.model = WhisperForConditionalGeneration.from_pretrained(str(folder), local_files_only=True)
        self.model = self.model.eval().to(device)
        self.device, self.max_new_tokens = device, max_new_tokens

    def transcribe(self, wav: torch.Tensor | np.ndarray) -> str:
        """Transcribes ``(samples,)`` float audio at 16 kHz (30 s at most, Whisper's window)."""
        feats = self.processor(_as_numpy(wav), sampling_rate=16000, return_tensors="pt").input_features
        with torch.inference_mode():
            ids = self.model.generate(feats.to(self.device), max_new_tokens=self.max_new_tokens)
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip().lower()


def load_asr(spec: str | os.PathLike = "pocketsphinx", device: str = "cpu"):
    """An ASR by name or folder: ``"pocketsphinx"`` (offline default), or a local Hugging Face folder (Whisper
    when its ``config.json`` says ``model_type: whisper``, else a CTC model).

    Raises:
        SpeechkitError: ``spec`` is neither ``pocketsphinx`` nor a folder with a ``config.json``.
    """
    import json
    from pathlib import Path

    from speechkit.errors import SpeechkitError

    if str(spec) == "pocketsphinx":
        return PocketSphinxASR()
    cfg = Path(spec) / "config.json"
    if not cfg.is_file():
        raise SpeechkitError(f"ASR {str(spec)!r}: expected 'pocketsphinx' or a local Hugging Face model folder "
                             f"with config.json; {cfg} does not exist")
    if json.loads(cfg.read_text()).get("model_type") == "whisper":
        return WhisperASR(spec, device=device)
    return HFCTCASR(spec, device=device)
