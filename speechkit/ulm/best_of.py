"""Compute-matched best-of-k continuation: k samples from a unit LM, one picked by a ranker, FLOPs counted.

Following "The Larger the Better? Improved LLM Code-Generation via Budget Reallocation" (Hassid et al. 2024):
at an equal compute budget, k samples of a small model plus a selection step can beat one sample of a larger
model when the selector is good. Budgets are counted in FLOPs as ``2 x parameters x tokens`` per forward token
(attention's share and the ASR decoder are not counted; ASR time is reported apart where it is used).

Rankers (higher score = better):

- :class:`LikelihoodRanker` — mean log-probability of the continuation given the prompt under a unit LM: the
  generator itself (``LikelihoodRanker(lm)``) or a larger one.
- :class:`ASRRanker` — synthesise, transcribe (e.g. :class:`speechkit.metrics.asr.PocketSphinxASR`) and score
  the transcript's mean log-probability under a text LM.
- any callable ``(prompt_units, candidates) -> scores`` (an oracle, for instance).

Example::

    from speechkit.ulm.best_of import LikelihoodRanker, best_of_k
    result = best_of_k(small_lm, prompt_units, k=4, num_new=100, ranker=LikelihoodRanker(small_lm), seed=0)
    result.best, result.scores, result.flops
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["ASRRanker", "BestOf", "LikelihoodRanker", "best_of_k", "forward_flops", "num_parameters"]


def num_parameters(model) -> int:
    """Parameters of a torch model (embeddings included)."""
    return sum(p.numel() for p in model.parameters())


def forward_flops(model, tokens: int) -> float:
    """≈ FLOPs of running ``tokens`` tokens through ``model``: ``2 x parameters x tokens``."""
    return 2.0 * num_parameters(model) * tokens


@dataclass
class BestOf:
    """Result of :func:`best_of_k`.

    Attributes:
        best: ``(n,)`` unit ids of the chosen continuation.
        index: its position among ``candidates``.
        candidates: every sampled continuation, in sampling order (seeds ``seed, seed + 1, ...``).
        scores: ``(k,)`` ranker scores.
        flops: ``{"generate": ..., "rank": ..., "total": ...}``.
    """

    best: torch.Tensor
    index: int
    candidates: list[torch.Tensor]
    scores: torch.Tensor
    flops: dict = field(default_factory=dict)


class LikelihoodRanker:
    """Scores a continuation by its mean log-probability given the prompt under a unit LM.

    Args:
        lm: a :class:`~speechkit.ulm.UnitLM` over the same units as the generator (the generator itself or a
            larger one).
    """

    needs_audio = False

    def __init__(self, lm):
        self.lm = lm

    def __call__(self, prompt_units, candidates: list[torch.Tensor]) -> torch.Tensor:
        from speechkit.ulm.model import token_log_likelihood

        prompt = self.lm.vocab.token_ids(prompt_units, append_eos=False)
        offset = self.lm.vocab.unit_offset
        seqs = [prompt + [int(u) + offset for u in c] for c in candidates]
        whole = token_log_likelihood(self.lm.model, seqs, reduction="sum")
        base = token_log_likelihood(self.lm.model, [prompt], reduction="sum")[0] if len(prompt) > 1 else 0.0
        lengths = torch.tensor([max(1, len(c)) for c in candidates], dtype=torch.float32)
        return (whole - base) / lengths

    def flops(self, prompt_len: int, candidates: list[torch.Tensor]) -> float:
        return sum(forward_flops(self.lm.model, prompt_len + len(c)) for c in candidates) + \
            forward_flops(self.lm.model, prompt_len)


class ASRRanker:
    """Transcribes each candidate's audio and scores the transcript's mean log-probability per token under a text
    LM: minus its log GenPPL (:mod:`speechkit.metrics.genppl`), so the ranker keeps the candidate whose words the
    text LM finds most plausible. A candidate with no recognised words scores ``-inf``.

    Args:
        asr: object with ``transcribe(wav) -> str`` and ``sample_rate`` (e.g. ``PocketSphinxASR()``).
        text_model: a :class:`~speechkit.metrics.genppl.TextLMScorer` (its normalisation applies), or an HF
            causal LM with ``tokenizer``.
        tokenizer: the tokenizer of an HF ``text_model``.
    """

    needs_audio = True

    def __init__(self, asr, text_model, tokenizer=None):
        from speechkit.metrics.genppl import TextLMScorer

        self.asr = asr
        self.scorer = text_model if isinstance(text_model, TextLMScorer) else TextLMScorer(text_model, tokenizer)
        self.transcripts: list[str] = []

    def __call__(self, prompt_units, candidates, audio: list[torch.Tensor]) -> torch.Tensor:
        self.transcripts = [self.asr.transcribe(a) for a in audio]
        return torch.tensor([-n / t if t else float("-inf") for n, t in self.scorer.nll(self.transcripts)])

    def flops(self, prompt_len: int, candidates) -> float:
        return self.scorer.flops(self.transcripts)


def best_of_k(lm, prompt_units, k: int, num_new: int, ranker, *, temperature: float = 0.8, top_k: int | None = None,
              top_p: float | None = None, seed: int = 0, audio_fn=None, cache_fn=None) -> BestOf:
    """Samples ``k`` continuations of ``prompt_units`` and keeps the one ``ranker`` scores highest.

    Args:
        lm: the generator, a :class:`~speechkit.ulm.UnitLM`.
        prompt_units: ``(N,)`` unit ids.
        k: number of samples (>= 1).
        num_new: units per continuation (fewer if the LM ends the utterance).
        ranker: :class:`LikelihoodRanker`, :class:`ASRRanker` or a callable ``(prompt, candidates) -> (k,)``.
        temperature, top_k, top_p: sampling; candidate ``i`` uses seed ``seed + i``.
        audio_fn: ``units -> wav`` for rankers that need audio (``ranker.needs_audio``).
        cache_fn: ``() -> cache`` for a bounded KV cache per sample (see :mod:`speechkit.ulm.cache`).

    Returns:
        :class:`BestOf`; ties go to the earliest sample.

    Raises:
        ValueError: ``k < 1``, or an audio ranker without ``audio_fn``.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1. Found {k!r}")
    needs_audio = getattr(ranker, "needs_audio", False)
    if needs_audio and audio_fn is None:
        raise ValueError(f"{type(ranker).__name__} ranks audio: pass audio_fn (units -> wav)")
    prompt = torch.as_tensor(prompt_units, dtype=torch.long)
    candidates = [lm.generate(prompt, max_new_tokens=num_new, temperature=temperature, top_k=top_k, top_p=top_p,
                              seed=seed + i, cache=None if cache_fn is None else cache_fn()) for i in range(k)]
    prompt_len = len(lm.vocab.token_ids(prompt, append_eos=False))
    if k == 1:
        scores = torch.zeros(1)
    elif needs_audio:
        scores = ranker(prompt, candidates, [audio_fn(torch.cat([prompt, c])) for c in candidates])
    else:
        scores = torch.as_tensor(ranker(prompt, candidates), dtype=torch.float32)
    index = int(torch.argmax(scores)) if k > 1 else 0
    generate = sum(forward_flops(lm.model, prompt_len + len(c)) for c in candidates)
    rank = float(ranker.flops(prompt_len, candidates)) if k > 1 and hasattr(ranker, "flops") else 0.0
    return BestOf(best=candidates[index], index=index, candidates=candidates, scores=scores,
                  flops={"generate": generate, "rank": rank, "total": generate + rank})
