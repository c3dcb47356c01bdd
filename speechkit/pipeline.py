"""The Python API of whole pipelines: :class:`Resynthesizer` (speech → units → speech) and
:class:`SpeechContinuation` (prompt speech → units → unit-LM continuation → speech, TWIST generation).

Example:
    >>> from speechkit import Resynthesizer
    >>> rs = Resynthesizer.from_pretrained("checkpoints/default")
    >>> out = rs(wav, sample_rate=48000)                       # keeps the voice (closest vocoder speaker)
    >>> out = rs(wav, sample_rate=48000, speaker="us2", style="whisper")   # voice / style conversion
    >>> rs.output_sample_rate
    16000
    >>> for y in rs.stream(chunks, sample_rate=16000, speaker="us1"): ...   # live: 1-D chunks in, out when final
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speechkit.errors import SpeechkitError
from speechkit.hub import DEFAULT_MODEL

__all__ = ["Resynthesizer", "SpeechContinuation", "PipelineError", "StreamConfig"]


MAX_OFFLINE_SECONDS = 600.0
"""The longest input the offline :meth:`Resynthesizer.__call__` takes (10 minutes: about 3 GB at peak on a CPU,
extrapolated from the 1.5 GB measured on 5 minutes by ``benchmarks/streaming.py``).
Longer recordings go through :meth:`Resynthesizer.stream` (``speechkit resynth --stream``), whose memory is flat."""


def check_offline_length(seconds: float, what: str) -> None:
    """Refuses offline resynthesis of more than :data:`MAX_OFFLINE_SECONDS` (``what`` names the input)."""
    if seconds > MAX_OFFLINE_SECONDS:
        raise PipelineError(f"{what} is {seconds:.0f} s long; offline resynthesis takes at most "
                            f"{MAX_OFFLINE_SECONDS:.0f} s (memory grows with the length): stream it instead "
                            "(speechkit resynth --stream, Resynthesizer.stream), in flat memory")


class PipelineError(SpeechkitError, ValueError):
    """A pipeline folder or input is unusable; the message names the file or argument."""


@dataclass(frozen=True)
class StreamConfig:
    """Settings of :meth:`Resynthesizer.stream` (in unit frames of 20 ms for HuBERT units).

    The algorithmic latency is ``block + lookahead`` frames plus the last frame's 5 ms receptive-field tail: an
    output sample is final once the input ``(block + lookahead) * 20 ms`` after its block's start has arrived
    (485 ms at the defaults). The vocoder adds none: its lookahead is the encoder's provisional units. Defaults
    measured on held-out files (docs/streaming.md): lookahead 16 keeps the WER of the offline call; block 8
    halves the per-block cost of block 4 (real-time factor 0.3 against 0.55 on 2 threads).

    Args:
        block: frames finalised per step (a multiple of 4 for the unit-to-mel vocoders: 4 units = 5 mel frames).
        left_context: encoder frames of context before a block (attention; the front end keeps running statistics).
        lookahead: encoder frames after a block. HuBERT's positional convolution alone spans 16 frames either side;
            at 16 the streamed units decode as well as the offline ones (docs/streaming.md).
        vocoder_left: vocoder frames of context before a block (its convolutions' receptive field).
        vocoder_lookahead: vocoder frames after a block, from the provisional units (at most ``lookahead``).
        griffin_lim_block: mel frames Griffin-Lim commits per pass (a block of 8 units = 10 mel frames = 2 passes).
        griffin_lim_lookahead: mel frames after a pass that Griffin-Lim reconstructs with it (at least 2; from the
            decoder's provisional frames past the block).
        griffin_lim_iters: Griffin-Lim iterations per pass.
        match_seconds: with no speaker given, the voice is chosen from this much input, then held; the output
            starts after it.
    """

    block: int = 8
    left_context: int = 50
    lookahead: int = 16
    vocoder_left: int = 24
    vocoder_lookahead: int = 8
    griffin_lim_block: int = 5
    griffin_lim_lookahead: int = 10
    griffin_lim_iters: int = 16
    match_seconds: float = 1.0

    def check(self) -> None:
        for name in ("block", "left_context", "lookahead", "vocoder_left", "vocoder_lookahead",
                     "griffin_lim_block", "griffin_lim_lookahead", "griffin_lim_iters"):
            value = getattr(self, name)
            low = 1 if name in ("block", "griffin_lim_block", "griffin_lim_iters") else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PipelineError(f"StreamConfig.{name} must be an integer >= {low}. Found {value!r}")
        if self.vocoder_lookahead > self.lookahead:
            raise PipelineError(f"StreamConfig.vocoder_lookahead ({self.vocoder_lookahead}) cannot exceed lookahead "
                                f"({self.lookahead}): the vocoder's lookahead is the encoder's provisional units")
        if not self.match_seconds > 0 or self.match_seconds != self.match_seconds:
            raise PipelineError(f"StreamConfig.match_seconds must be > 0. Found {self.match_seconds!r}")

    def latency_seconds(self, frame_rate: float, receptive_tail: float = 0.005) -> float:
        """Input seconds that arrive after a block starts before its first output sample is final."""
        return (self.block + self.lookahead) / frame_rate + receptive_tail


def active_head(wav: torch.Tensor, sample_rate: int, seconds: float, floor_db: float = 40.0) -> torch.Tensor:
    """The first ``seconds`` of the 20 ms frames of ``wav`` whose level is within ``floor_db`` of its loudest frame
    (and above digital silence), joined: a voice is judged by sound, not by a long leading silence or pauses.
    Returns the plain head when no frame qualifies."""
    hop = max(1, int(0.02 * sample_rate))
    n = wav.numel() // hop
    plain = wav[: max(1, int(seconds * sample_rate))]
    if n == 0:
        return plain
    frames = wav[: n * hop].reshape(n, hop)
    level = 10 * torch.log10(frames.pow(2).mean(1).clamp_min(1e-12))
    keep = (level > level.max() - floor_db) & (level > -90.0)
    if not keep.any():
        return plain
    return frames[keep].reshape(-1)[: max(1, int(seconds * sample_rate))]


class Resynthesizer:
    """Speech encoder + unit vocoder: resynthesis, voice and style conversion.

    Args:
        encoder: a :class:`~speechkit.units.SpeechEncoder` (``units``, ``durations``; resamples its input).
        vocoder: a unit vocoder (:class:`~speechkit.vocoders.CodeHiFiGANVocoder` or
            :class:`~speechkit.vocoders.UnitMelVocoder`) with the same unit vocabulary.
        dur_prediction: regenerate durations with the vocoder's duration predictor instead of keeping the input's
            (``None``: keep the input's timing).
        match_seconds: seconds at the start of the input the voice is chosen from when it is kept (see
            :meth:`match_speaker`).
        voice_match: how the kept voice is chosen: ``"auto"`` (by speaker embedding where the vocoder stores its
            speakers' embeddings, else by synthesis), ``"embedding"`` or ``"synthesis"``.

    Example:
        >>> rs = Resynthesizer(SpeechEncoder.from_pretrained("enc"), CodeHiFiGANVocoder.from_pretrained("voc"))
        >>> out = rs(wav, sample_rate=44100, speaker="ex02")
    """

    def __init__(self, encoder, vocoder, *, dur_prediction: bool | None = None, match_seconds: float = 3.0,
                 voice_match: str = "auto"):
        if encoder.vocab_size != vocoder.vocab_size:
            raise PipelineError(f"the encoder makes {encoder.vocab_size} units but the vocoder reads "
                                f"{vocoder.vocab_size}: they were not trained together")
        if encoder.code_hop_size * vocoder.output_sample_rate != vocoder.code_hop_size * encoder.expected_sample_rate:
            raise PipelineError(f"unit rates differ: encoder {encoder.expected_sample_rate / encoder.code_hop_size} "
                                f"Hz, vocoder {vocoder.output_sample_rate / vocoder.code_hop_size} Hz")
        self.encoder, self.vocoder = encoder, vocoder
        self.dur_prediction = bool(dur_prediction)
        self.match_seconds = match_seconds
        if voice_match not in ("auto", "embedding", "synthesis"):
            raise PipelineError(f"voice_match must be auto, embedding or synthesis. Found {voice_match!r}")
        if voice_match == "embedding" and getattr(vocoder, "speaker_table", None) is None:
            raise PipelineError("voice_match='embedding': the vocoder stores no speaker embeddings "
                                "(speaker_embeddings.json); use 'synthesis' or 'auto'")
        self.voice_match = voice_match
        self._speaker_encoder = None

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Resynthesizer:
        """Moves the encoder and the vocoder to ``device``; ``dtype`` (``torch.bfloat16`` / ``torch.float16``)
        turns on their reduced-precision fast paths where ``device`` computes in it (else they stay fp32, with one
        warning line), ``torch.float32`` turns them off. Returns ``self``."""
        from speechkit.utils.checkpoint import place

        place(self.encoder, device, dtype)
        place(self.vocoder, device, dtype)
        return self

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike = DEFAULT_MODEL, *, mel_vocoder: str = "auto",
                        device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                        **options) -> Resynthesizer:
        """Loads ``folder/encoder`` (a speech-encoder folder) and ``folder/vocoder`` (a speechkit vocoder folder,
        or an official ``g_XXXXXXXX`` + ``config.json`` folder). The default is the bundle speechkit trained
        itself; a relative folder missing from the working directory is looked up under the repository root.
        ``mel_vocoder="griffinlim"`` makes a unit-to-mel vocoder speak through Griffin-Lim instead of its
        ``mel_vocoder/`` (the bundle's Vocos). ``device`` and ``dtype``: as :meth:`to`.

        Raises:
            PipelineError: a sub-folder is missing.
        """
        from speechkit import hub
        from speechkit.units import SpeechEncoder
        from speechkit.vocoders import CodeHiFiGANVocoder, UnitVocoder

        if hub.is_card_name(folder):  # a vocoder card names the speech-encoder card whose units it reads
            card = hub.load_card(str(folder))
            if card.path is not None:
                folder = hub.fetch(card.name)["folder"]
            elif card.kind == "vocoder" and card.encoder:
                return cls(SpeechEncoder.from_pretrained(card.encoder), CodeHiFiGANVocoder.from_pretrained(card.name),
                           **options).to(device, dtype)
            else:
                raise PipelineError(f"card {card.name!r} is a {card.kind}; a Resynthesizer needs a vocoder card "
                                    "with an 'encoder' (see `speechkit models --kind vocoder`)")
        d = hub.local_model_dir(folder)
        for sub in ("encoder", "vocoder"):
            if not (d / sub).is_dir():
                raise PipelineError(f"{d}: missing {sub}/ (a resynthesis folder holds encoder/ and vocoder/)")
        vocoder = UnitVocoder.from_pretrained(d / "vocoder", mel_vocoder=mel_vocoder)
        f0 = {"need_f0": True} if vocoder.config.f0 != "none" else {}
        return cls(SpeechEncoder.from_pretrained(d / "encoder", **f0), vocoder, **options).to(device, dtype)

    @property
    def output_sample_rate(self) -> int:
        return self.vocoder.output_sample_rate

    def encode(self, wav: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """The encoder's output for ``wav`` at ``sample_rate`` (``(samples,)`` or ``(channels, samples)``)."""
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() == 2:
            wav = wav.mean(0)
        if wav.dim() != 1 or wav.numel() == 0:
            raise PipelineError(f"wav must be non-empty (samples,) or (channels, samples). Found {tuple(wav.shape)}")
        min_samples = int(self.encoder.code_hop_size * sample_rate / self.encoder.expected_sample_rate) * 2
        if wav.numel() < min_samples:
            raise PipelineError(f"wav is too short to encode: {wav.numel()} samples at {sample_rate} Hz (at least "
                                f"{min_samples})")
        with torch.inference_mode():
            return self.encoder(wav, sample_rate=sample_rate)

    def vocoder_inputs(self, encoded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``units``, ``durations`` (the input's, or predicted with ``dur_prediction``) and, for F0-conditioned
        vocoders, frame-level ``f0`` normalised with the utterance's own voiced statistics (so the vocoder's
        speaker embedding sets the pitch range, as in speech-resynthesis' voice conversion)."""
        units, durations = encoded["units"], encoded["durations"]
        if self.dur_prediction:
            if self.vocoder.model.duration_predictor is None:
                raise PipelineError("dur_prediction: the vocoder has no duration predictor")
            with torch.inference_mode():
                durations = self.vocoder.model.predict_durations(units[None].to(self.vocoder.device))[0].cpu()
        out = {"units": units, "durations": durations}
        if self.vocoder.config.f0 == "quantized":
            raise PipelineError("F0-bin vocoders need the F0 quantiser of their training; give vocoder(f0=bins)")
        if self.vocoder.config.f0 == "continuous":
            if "f0" not in encoded:
                raise PipelineError("the vocoder is conditioned on F0: build the encoder with need_f0=True")
            from speechkit.vocoders.hifigan.f0 import normalize_f0

            f0 = torch.repeat_interleave(encoded["f0"].float(), durations)
            voiced = f0[f0 > 0]
            out["f0"] = normalize_f0(f0, float(voiced.mean()), max(float(voiced.std()), 1.0)) \
                if voiced.numel() > 1 else torch.zeros_like(f0)
        return out

    def _synthesize(self, inputs: dict[str, torch.Tensor], speaker: Any, style: Any, frames: int | None = None):
        units, durations, f0 = inputs["units"], inputs["durations"], inputs.get("f0")
        if frames is not None:  # the first units covering `frames` frames
            keep = int((torch.cumsum(durations, 0) <= frames).sum().clamp(min=1))
            units, durations = units[:keep], durations[:keep]
            f0 = None if f0 is None else f0[: int(durations.sum())]
        return self.vocoder(units, speaker=speaker, style=style, durations=durations, f0=f0)

    def match_speaker(self, wav: torch.Tensor, sample_rate: int, units: torch.Tensor, durations: torch.Tensor,
                      style: Any = None, *, f0: torch.Tensor | None = None) -> int | str | None:
        """The vocoder speaker whose voice is closest to the first :attr:`match_seconds` of ``wav``.

        By speaker embedding (``voice_match`` ``"auto"`` or ``"embedding"``) where the vocoder stores its speakers'
        mean embeddings (``speaker_embeddings.json``, written when speechkit trains a vocoder): the speaker with
        the highest cosine similarity to the input's resemblyzer embedding (:meth:`match_speaker_by_embedding`).
        Otherwise, as for official checkpoints, by analysis by synthesis (:meth:`match_speaker_by_synthesis`).
        ``None`` for vocoders without a speaker table.

        Args:
            wav: ``(samples,)`` the input.
            sample_rate: its rate.
            units: its deduplicated units.
            durations: their durations.
            style: the style to synthesise the candidates with (synthesis only).
            f0: frame-level normalised F0 for F0-conditioned vocoders (see :meth:`vocoder_inputs`).
        """
        size = self.vocoder.config.num_speakers
        if size <= 1:
            return None if size == 0 else 0
        if self.voice_match != "synthesis" and getattr(self.vocoder, "speaker_table", None) is not None:
            return self.match_speaker_by_embedding(wav, sample_rate)
        return self.match_speaker_by_synthesis(wav, sample_rate, units, durations, style, f0=f0)

    def match_speaker_by_embedding(self, wav: torch.Tensor, sample_rate: int) -> str:
        """The vocoder speaker whose stored mean speaker embedding is most similar (cosine) to the embedding of the
        first :attr:`match_seconds` of sound in ``wav`` (:func:`active_head`: leading silence and pauses skipped)."""
        from speechkit.metrics.speaker import SpeakerEncoder

        if self._speaker_encoder is None:
            self._speaker_encoder = SpeakerEncoder()
        head = active_head(wav, sample_rate, self.match_seconds)
        if float(head.abs().max()) < 1e-6:  # digital silence has no voice: the first speaker
            return self.vocoder.speakers[0] if self.vocoder.speakers else 0
        return self.vocoder.speaker_table.closest(self._speaker_encoder.embed(head, sample_rate))

    def match_speaker_by_synthesis(self, wav: torch.Tensor, sample_rate: int, units: torch.Tensor,
                                   durations: torch.Tensor, style: Any = None, *,
                                   f0: torch.Tensor | None = None) -> int:
        """Analysis by synthesis: the first :attr:`match_seconds` of the units are synthesised with every speaker
        of the vocoder; the one whose mean and spread of the log-mel spectrum (timbre and pitch range) is closest
        to the input's wins. Costs one vocoder pass per speaker; the fallback for vocoders without stored speaker
        embeddings (arguments as :meth:`match_speaker`)."""
        from speechkit.audio.io import resample
        from speechkit.vocoders.hifigan.losses import MelSpectrogram

        size = self.vocoder.config.num_speakers
        sr = self.output_sample_rate
        mel = MelSpectrogram(sr, n_fft=1024, num_mels=80, hop_length=256, win_length=1024)
        frames = int(self.match_seconds * sr / self.vocoder.code_hop_size)

        def stats(x: torch.Tensor) -> torch.Tensor:
            m = mel(x[None])[0]
            return torch.cat([m.mean(1), m.std(1)])

        names = self.vocoder.speakers or []
        candidates = range(min(size, len(names))) if names else range(size)
        inputs = {"units": units, "durations": durations, **({"f0": f0} if f0 is not None else {})}
        outs = {s: self._synthesize(inputs, s, style, frames) for s in candidates}
        target = stats(resample(wav, sample_rate, sr)[: len(next(iter(outs.values())))])
        dist = {s: float((stats(y) - target).norm()) for s, y in outs.items()}
        return min(dist, key=dist.get)

    def __call__(self, wav: torch.Tensor, sample_rate: int, speaker: Any = None, style: Any = None) -> torch.Tensor:
        """Resynthesises ``wav``.

        Args:
            wav: ``(samples,)`` or ``(channels, samples)`` at any rate (resampled, mixed down).
            sample_rate: its rate.
            speaker: a vocoder speaker (name or id) to convert the voice to; ``None`` keeps the voice (the
                closest vocoder speaker, :meth:`match_speaker`: by stored speaker embedding, else by synthesis).
            style: a vocoder style (name or id); ``None`` = the style named "default" where the vocoder has one,
                else id 0.

        Returns:
            ``(samples,)`` float32 at :attr:`output_sample_rate`.

        Raises:
            PipelineError: the input is longer than :data:`MAX_OFFLINE_SECONDS` (offline memory grows with the
                length; :meth:`stream` takes any length in bounded memory).
        """
        if isinstance(wav, torch.Tensor):
            wav = wav.detach().float().cpu()
        seconds = (wav.shape[-1] if hasattr(wav, "shape") else len(wav)) / sample_rate
        check_offline_length(seconds, "the input")
        inputs = self.vocoder_inputs(self.encode(wav, sample_rate))
        mono = torch.as_tensor(wav, dtype=torch.float32)
        mono = mono.mean(0) if mono.dim() == 2 else mono
        if speaker is None:
            speaker = self.match_speaker(mono, sample_rate, inputs["units"], inputs["durations"], style,
                                         f0=inputs.get("f0"))
        return self._synthesize(inputs, speaker, style)


    def stream(self, chunks: Iterable[torch.Tensor], sample_rate: int, speaker: Any = None, style: Any = None, *,
               config: StreamConfig | None = None) -> Iterator[torch.Tensor]:
        """Resynthesises a stream: pulls ``chunks`` lazily, yields output as soon as it is final.

        The input is resampled, encoded and vocoded a block at a time on a fixed grid of the input, so the output
        does not depend on how the input is cut, and memory stays bounded however long the stream. With no
        ``speaker``, the voice is chosen from the first ``config.match_seconds`` of input and then held.

        Args:
            chunks: an iterable of ``(samples,)`` float tensors (or arrays) at ``sample_rate``, any lengths.
            sample_rate: their rate.
            speaker: a vocoder speaker; ``None`` keeps the voice (as :meth:`__call__`).
            style: a vocoder style; ``None`` = the vocoder's default.
            config: block, context and lookahead settings (:class:`StreamConfig`).

        Yields:
            ``(samples,)`` float32 at :attr:`output_sample_rate`; together as long as the offline call's output.
            The Griffin-Lim vocoders are not peak-normalised here (no whole signal to normalise): their level is
            the decoder's mel level, clipped to [-1, 1].

        Raises:
            PipelineError: a chunk that is not 1-D finite audio (naming its index), an empty stream, or a pipeline
                that cannot stream (F0-conditioned vocoders, ``dur_prediction``, non-HuBERT encoders).
        """
        from speechkit.audio.streaming import StreamingResampler
        from speechkit.units.streaming import StreamingUnitEncoder
        from speechkit.vocoders.errors import VocoderError
        from speechkit.vocoders.streaming import vocoder_stream

        cfg = config or StreamConfig()
        cfg.check()
        if self.dur_prediction:
            raise PipelineError("stream: dur_prediction needs the whole unit sequence; use the offline call")
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise PipelineError(f"sample_rate must be a positive integer. Found {sample_rate!r}")
        try:
            encoder = StreamingUnitEncoder(self.encoder, block=cfg.block, left_context=cfg.left_context,
                                           lookahead=cfg.lookahead)
        except ValueError as e:
            raise PipelineError(f"stream: {e}") from None
        period = 1
        if hasattr(self.vocoder, "mel_vocoder"):  # unit-to-mel: blocks of whole mel frames
            period = (self.vocoder.code_hop_size / self.vocoder.config.mel.hop_length).as_integer_ratio()[1]
        if cfg.block % period:
            raise PipelineError(f"stream: block must be a multiple of {period} frames for this vocoder (whole mel "
                                f"frames). Found {cfg.block}")
        if getattr(self.vocoder.config, "f0", "none") != "none":
            raise PipelineError("stream: F0-conditioned vocoders normalise F0 with the whole utterance's statistics; "
                                "use the offline call")
        return self._stream(chunks, int(sample_rate), speaker, style, cfg, encoder, StreamingResampler,
                            vocoder_stream, VocoderError)

    def _stream(self, chunks, sample_rate, speaker, style, cfg, encoder, resampler_cls, vocoder_stream, VocoderError):
        resampler = resampler_cls(sample_rate, self.encoder.expected_sample_rate)
        need_voice = speaker is None and self.vocoder.config.num_speakers > 1
        head, head_len, limit = [], 0, max(1, int(cfg.match_seconds * sample_rate))
        pending: list = []
        voc = None
        received = 0

        def make_vocoder(spk):
            try:
                return vocoder_stream(self.vocoder, spk, style, left=cfg.vocoder_left,
                                      lookahead=cfg.vocoder_lookahead, gl_lookahead=cfg.griffin_lim_lookahead,
                                      gl_block=cfg.griffin_lim_block, gl_iters=cfg.griffin_lim_iters)
            except (ValueError, VocoderError) as e:
                raise PipelineError(f"stream: {e}") from None

        def choose_voice():
            wav = torch.cat(head)
            if wav.numel() < int(self.encoder.code_hop_size * sample_rate / self.encoder.expected_sample_rate) * 2:
                return 0
            if getattr(self.vocoder, "speaker_table", None) is not None and self.voice_match != "synthesis":
                return self.match_speaker_by_embedding(wav, sample_rate)
            enc = self.encode(wav, sample_rate)
            return self.match_speaker(wav, sample_rate, enc["units"], enc["durations"], style)

        def emit(blocks):
            for b in blocks:
                y = voc.push(b.start, b.final, b.provisional).clamp(-1.0, 1.0)
                if y.numel():
                    yield y

        if not need_voice:
            voc = make_vocoder(speaker if speaker is not None or self.vocoder.config.num_speakers != 1 else 0)
        for i, chunk in enumerate(chunks):
            x = torch.as_tensor(chunk.detach().cpu() if isinstance(chunk, torch.Tensor) else chunk,
                                dtype=torch.float32)
            if x.dim() != 1:
                raise PipelineError(f"stream: chunk {i} must be 1-D (samples,). Found shape {tuple(x.shape)}")
            if not torch.isfinite(x).all():
                raise PipelineError(f"stream: chunk {i} contains NaN or infinite samples")
            received += x.numel()
            if voc is None and head_len < limit:
                head.append(x[: limit - head_len])
                head_len += head[-1].numel()
            blocks = encoder.push(resampler.push(x))
            if voc is None:
                pending += blocks
                if head_len >= limit:
                    voc = make_vocoder(choose_voice())
                    blocks, pending = pending, []
                else:
                    continue
            yield from emit(blocks)
        if received == 0:
            raise PipelineError("stream: no input (the chunks were empty)")
        blocks = encoder.push(resampler.flush()) + encoder.flush()
        if not blocks and not pending and encoder.frames_available == 0:
            raise PipelineError(f"stream: the input is too short to encode: {received} samples at {sample_rate} Hz")
        if voc is None:
            voc = make_vocoder(choose_voice())
        yield from emit(pending + blocks)


# ------------------------------------------------------------------------------------------------ continuation
class SpeechContinuation:
    """Speech encoder + unit LM + unit vocoder.

    Args:
        encoder: a :class:`~speechkit.units.SpeechEncoder` (deduplicating).
        lm: a :class:`~speechkit.ulm.UnitLM` over the encoder's units.
        vocoder: a unit vocoder (CodeHiFiGAN or unit-to-mel) over the same units.
        dur_prediction: synthesise with the vocoder's duration predictor (TWIST); ``False`` keeps the prompt's
            durations and gives every generated unit the prompt's median duration (for vocoders without one).

    Raises:
        PipelineError: the three parts do not share one unit vocabulary, or a duration predictor is missing.
    """

    def __init__(self, encoder, lm, vocoder, *, dur_prediction: bool = True):
        if not encoder.vocab_size == lm.num_units == vocoder.vocab_size:
            raise PipelineError(f"unit vocabularies differ: encoder {encoder.vocab_size}, unit LM {lm.num_units}, "
                                f"vocoder {vocoder.vocab_size}; they must come from one tokenizer")
        if dur_prediction and getattr(vocoder.model, "duration_predictor", None) is None:
            raise PipelineError("the vocoder has no duration predictor; pass dur_prediction=False (generated units "
                                "then get the prompt's median duration)")
        self.resynthesizer = Resynthesizer(encoder, vocoder)
        self.encoder, self.lm, self.vocoder = encoder, lm, vocoder
        self.dur_prediction = dur_prediction

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> SpeechContinuation:
        """Moves the encoder, the unit LM and the vocoder to ``device``; ``dtype`` (``torch.bfloat16`` /
        ``torch.float16``) runs them in it where ``device`` computes in it (else fp32, with one warning line per
        part), ``torch.float32`` restores fp32. Returns ``self``."""
        self.resynthesizer.to(device, dtype)  # the encoder and the vocoder (and checks dtype)
        if device is not None:
            self.lm.to(device)
        if dtype is not None:
            from speechkit.precision import DTYPE_NAMES, DTYPES, resolve_precision

            name = resolve_precision(DTYPE_NAMES[dtype], self.lm.device, what="unit LM dtype")
            self.lm.model.to(DTYPES[name])
        return self

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike | None = None, *, encoder: str | os.PathLike | None = None,
                        ulm: str | os.PathLike | None = None, vocoder: str | os.PathLike | None = None,
                        device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                        **options) -> SpeechContinuation:
        """Loads ``folder/encoder``, ``folder/ulm`` and ``folder/vocoder``; explicit parts override each one, as
        folders or model-card names (``encoder="hubert-base-ls960-kmeans-200"``, ``ulm="TWIST-350M"``,
        ``vocoder=...``: the official continuation chain). ``folder`` may be a bundle's card name too. With no
        folder and no part given, loads the default bundle (``checkpoints/default``). ``device`` and ``dtype``: as
        :meth:`to`."""
        from speechkit import hub
        from speechkit.ulm import UnitLM
        from speechkit.units import SpeechEncoder
        from speechkit.vocoders import UnitVocoder

        parts = {"encoder": encoder, "ulm": ulm, "vocoder": vocoder}
        if folder is None and all(p is None for p in parts.values()):
            folder = hub.DEFAULT_MODEL
        if folder is not None and hub.is_card_name(folder):  # a bundle by card name
            card = hub.load_card(str(folder))
            if card.path is None:
                raise PipelineError(f"card {card.name!r} is a {card.kind}; give a bundle (folder or card) or the "
                                    "parts by name: encoder=..., ulm=..., vocoder=...")
            folder = hub.fetch(card.name)["folder"]
        for name, path in parts.items():
            if path is None:
                if folder is None:
                    raise PipelineError(f"no {name}: give a model folder or the {name} path or card name")
                parts[name] = hub.local_model_dir(folder) / name
            elif hub.is_card_name(path):  # a released part by name: each loader fetches its card
                continue
            else:
                parts[name] = hub.local_model_dir(path)
            if not Path(parts[name]).exists():
                raise PipelineError(f"{parts[name]}: no such {name} folder (nor a card name: `speechkit models` "
                                    "lists those)")
        return cls(SpeechEncoder.from_pretrained(parts["encoder"]), UnitLM.from_pretrained(parts["ulm"]),
                   UnitVocoder.from_pretrained(parts["vocoder"]), **options).to(device, dtype)

    @property
    def output_sample_rate(self) -> int:
        return self.vocoder.output_sample_rate

    def continue_units(self, units: torch.Tensor, num_new: int, *, temperature: float = 0.8,
                       top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                       cache: str | None = None, cache_size: int | None = None,
                       stop_on_eos: bool = True) -> torch.Tensor:
        """Samples ``num_new`` units after ``units`` (``(N,)``); only the last units that fit the LM's context
        (with room for ``num_new``) are used as the prompt. Returns ``(<= num_new,)`` unit ids: fewer where the LM
        ends the utterance, unless ``stop_on_eos=False`` (the end token is never drawn: exactly ``num_new``).

        ``cache`` (``tova``, ``window``, ``sinks``, ``h2o``; see :mod:`speechkit.ulm.cache`) bounds the KV cache to
        ``cache_size`` entries per layer: memory stays flat, and a rotary LM may continue past its context (only
        the prompt must fit)."""
        from speechkit.ulm.cache import make_cache

        try:
            kv_cache = make_cache(cache, cache_size)
        except ValueError as e:
            raise PipelineError(str(e)) from None
        context = self.lm.max_positions
        unbounded = kv_cache is not None and hasattr(self.lm.model.config, "rope_theta")
        if context is not None:
            room = context - (0 if unbounded else num_new) - 2  # BOS and the slot of the first new token
            if room < 1:
                raise PipelineError(f"{num_new} new units do not fit the unit LM's context of {context}; ask for "
                                    "fewer seconds")
            units = units[-room:]
        return self.lm.generate(units, max_new_tokens=num_new, temperature=temperature, top_k=top_k, top_p=top_p,
                                seed=seed, cache=kv_cache, stop_on_eos=stop_on_eos)

    def __call__(self, wav: torch.Tensor, sample_rate: int, *, seconds: float = 5.0, temperature: float = 0.8,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None, speaker: Any = None,
                 style: Any = None, include_prompt: bool = True, cache: str | None = None,
                 cache_size: int | None = None, stop_on_eos: bool = True) -> torch.Tensor:
        """Continues the speech in ``wav``.

        Args:
            wav: ``(samples,)`` or ``(channels, samples)`` prompt at any rate.
            sample_rate: its rate.
            seconds: about how much speech to add: the prompt's units per second times ``seconds`` new units
                (fewer if the LM ends the utterance).
            temperature, top_k, top_p, seed: sampling (see :meth:`UnitLM.generate`).
            speaker: vocoder speaker (name or id); ``None`` = the one closest to the prompt's voice.
            style: vocoder style; ``None`` = the style named "default" where the vocoder has one,
                else id 0.
            include_prompt: return prompt + continuation (TWIST), or the continuation alone.
            cache, cache_size: bounded KV cache policy and size (see :meth:`continue_units`).
            stop_on_eos: end where the unit LM ends the utterance (it may end at once after a whole sentence);
                ``False`` never draws the end token, so the continuation has the asked length (TWIST's setting).

        Returns:
            ``(samples,)`` float32 at :attr:`output_sample_rate`.
        """
        if seconds <= 0:
            raise PipelineError(f"seconds must be > 0. Found {seconds}")
        mono = torch.as_tensor(wav, dtype=torch.float32)
        mono = mono.mean(0) if mono.dim() == 2 else mono
        enc = self.resynthesizer.encode(mono, sample_rate)
        units, durations = enc["units"].cpu(), enc["durations"].cpu()
        units_per_second = len(units) / (mono.numel() / sample_rate)
        new = self.continue_units(units, max(1, math.ceil(seconds * units_per_second)), temperature=temperature,
                                  top_k=top_k, top_p=top_p, seed=seed, cache=cache, cache_size=cache_size,
                                  stop_on_eos=stop_on_eos)
        if speaker is None:
            speaker = self.resynthesizer.match_speaker(mono, sample_rate, units, durations, style)
        return self._render(units, durations, new, speaker, style, include_prompt)

    def best_of(self, wav: torch.Tensor, sample_rate: int, k: int, *, ranker: Any = "self", seconds: float = 5.0,
                temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None, seed: int = 0,
                speaker: Any = None, style: Any = None, include_prompt: bool = True):
        """Compute-matched best-of-k continuation: ``k`` samples (seeds ``seed .. seed + k - 1``), the one
        ``ranker`` scores highest is synthesised (see :mod:`speechkit.ulm.best_of`).

        ``wav``, ``sample_rate``, ``seconds``, ``temperature``, ``top_k``, ``top_p``, ``seed``, ``speaker``,
        ``style`` and ``include_prompt`` are as in :meth:`__call__`.

        Args:
            k: number of samples.
            ranker: ``"self"`` (the generator's own likelihood), another :class:`~speechkit.ulm.UnitLM` (its
                likelihood), an :class:`~speechkit.ulm.best_of.ASRRanker`, or a callable
                ``(prompt_units, candidates) -> scores``.

        Returns:
            ``(audio, result)``: ``(samples,)`` float32 at :attr:`output_sample_rate` and the
            :class:`~speechkit.ulm.best_of.BestOf` (candidates, scores, FLOPs).
        """
        from speechkit.ulm import UnitLM
        from speechkit.ulm.best_of import LikelihoodRanker, best_of_k

        if seconds <= 0:
            raise PipelineError(f"seconds must be > 0. Found {seconds}")
        if isinstance(ranker, str) and ranker != "self":
            raise PipelineError(f"ranker must be 'self', a UnitLM, an ASRRanker or a callable. Found {ranker!r}")
        ranker = LikelihoodRanker(self.lm) if ranker == "self" else ranker
        ranker = LikelihoodRanker(ranker) if isinstance(ranker, UnitLM) else ranker
        mono = torch.as_tensor(wav, dtype=torch.float32)
        mono = mono.mean(0) if mono.dim() == 2 else mono
        enc = self.resynthesizer.encode(mono, sample_rate)
        units, durations = enc["units"].cpu(), enc["durations"].cpu()
        num_new = max(1, math.ceil(seconds * len(units) / (mono.numel() / sample_rate)))
        if self.lm.max_positions is not None:  # the last units that fit the context, as continue_units
            room = self.lm.max_positions - num_new - 2
            if room < 1:
                raise PipelineError(f"{num_new} new units do not fit the unit LM's context of "
                                    f"{self.lm.max_positions}; ask for fewer seconds")
            units, durations = units[-room:], durations[-room:]
        if speaker is None:
            speaker = self.resynthesizer.match_speaker(mono, sample_rate, units, durations, style)
        result = best_of_k(self.lm, units, k, num_new, ranker, temperature=temperature, top_k=top_k, top_p=top_p,
                           seed=seed, audio_fn=lambda u: self._render(units, durations, u[len(units):], speaker,
                                                                      style, True))
        return self._render(units, durations, result.best, speaker, style, include_prompt), result

    def _render(self, units, durations, new, speaker, style, include_prompt: bool) -> torch.Tensor:
        out_units = torch.cat([units, new]) if include_prompt else new
        if len(out_units) == 0:
            return torch.zeros(0)
        if self.dur_prediction:
            return self.vocoder(out_units, speaker=speaker, style=style, dur_prediction=True)
        filler = torch.full((len(new),), max(1, int(durations.float().median())), dtype=torch.long)
        out_durations = torch.cat([durations, filler]) if include_prompt else filler
        return self.vocoder(out_units, speaker=speaker, style=style, durations=out_durations)
