"""``SpeechContinuation``: prompt audio -> units -> unit-LM continuation -> vocoder -> audio (TWIST generation).

As textlesslib's ``examples/twist``: the prompt is encoded to deduplicated units, the unit LM samples a
continuation (temperature 0.8 by default), and the vocoder synthesises prompt + continuation with its duration
predictor (generated units have no durations of their own).

Example:
    >>> sc = SpeechContinuation.from_pretrained("checkpoints/twist")   # encoder/, ulm/, vocoder/
    >>> out = sc(wav, sample_rate=48000, seconds=5, seed=0)             # (samples,) at sc.output_sample_rate
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["SpeechContinuation"]


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
        from speechkit.pipeline import PipelineError, Resynthesizer

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
        from speechkit.pipeline import PipelineError
        from speechkit.ulm import UnitLM
        from speechkit.units import SpeechEncoder
        from speechkit.vocoders import load_unit_vocoder

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
                   load_unit_vocoder(parts["vocoder"]), **options).to(device, dtype)

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
        from speechkit.pipeline import PipelineError
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
        from speechkit.pipeline import PipelineError

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
        from speechkit.pipeline import PipelineError
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
