"""GenPPL: how plausible the words of generated speech are, as a text LM judges their transcript.

The generation metric of slamkit and the Slam paper: transcribe each continuation with an ASR, score the
transcript with a causal text LM, report the perplexity. Per file, the transcript's mean negative log-likelihood
per token (``genppl_nll``, nats) and its exponential (``genppl``); over a folder, ``exp`` of the mean of the
per-file values, as slamkit aggregates (every transcript weighs the same, whatever its length).

Token layout: the tokenizer's BOS (when it has one and did not add it itself), then the transcript's tokens; every
transcript token is scored, given BOS and the tokens before it, and no end token is scored (slamkit's layout with a
Llama tokenizer). With a prompt transcript, the context is BOS + the prompt's tokens and only the continuation's
tokens are scored (they are tokenized with a leading space, so the two tokenizations join as one text would).

Normalisation: pocketsphinx writes lower-case words without punctuation, which a text LM trained on written text
finds improbable whatever the words. A speechkit text LM trained with ``data.normalize=asr`` records that in its
``text_lm.json``; :class:`TextLMScorer` then normalises every text it scores the same way
(:func:`speechkit.metrics.wer.normalize_text`), so any ASR's output (Whisper's punctuation included) is scored in
the form the LM was trained on. Other LMs (any Hugging Face causal LM, by folder or name) score the transcript as
the ASR wrote it, as slamkit does.

A transcript with no words has no perplexity: its ``genppl`` is NaN and the folder summary reports, beside
``genppl``, the share of files whose transcript has at least one word (``asr_nonempty``).

Example:
    >>> scorer = TextLMScorer.from_pretrained("checkpoints/default/textlm")
    >>> nll, tokens = scorer.nll(["bring the red box to the kitchen"])[0]
    >>> math.exp(nll / tokens)          # the transcript's perplexity
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from speechkit.errors import SpeechkitError

__all__ = ["TextLMScorer", "TextLMError", "aggregate_genppl", "check_text_lm", "write_text_lm_info", "DEFAULT_TEXT_LM",
           "TEXT_LM_INFO"]

DEFAULT_TEXT_LM = "checkpoints/default/textlm"
TEXT_LM_INFO = "text_lm.json"  # speechkit's note beside a text LM: {"normalize": "asr" | "none", ...}
NORMALIZATIONS = ("none", "asr")


class TextLMError(SpeechkitError, ValueError):
    """A text LM that cannot be loaded or used for scoring."""


class TextLMScorer:
    """Scores texts with a causal text LM: summed negative log-likelihood and token count per text.

    Args:
        model: a transformers causal LM.
        tokenizer: its tokenizer (``tokenizer(text, add_special_tokens=...)["input_ids"]``, ``bos_token_id``).
        normalize: ``"asr"`` (lower case, no punctuation, as :func:`~speechkit.metrics.wer.normalize_text`) or
            ``"none"``.
        batch_size: texts per forward pass.
        name: what the scorer reports as its LM.
    """

    def __init__(self, model, tokenizer, *, normalize: str = "none", batch_size: int = 16, name: str = "text LM"):
        if normalize not in NORMALIZATIONS:
            raise TextLMError(f"normalize must be one of {NORMALIZATIONS}. Found {normalize!r}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.normalize, self.batch_size, self.name = normalize, batch_size, name
        self.max_tokens = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = DEFAULT_TEXT_LM, *, device: str = "cpu",
                        normalize: str | None = None, **options) -> TextLMScorer:
        """Loads a local Hugging Face causal-LM folder (with its tokenizer), or a model by hub name (downloaded by
        transformers on first use).

        Args:
            name_or_path: folder or hub name; a relative ``checkpoints/...`` path is also looked up from the
                repository root.
            normalize: override the folder's ``text_lm.json`` (``None``: use it; ``"none"`` when absent).

        Raises:
            TextLMError: not a folder with ``config.json`` and a tokenizer, or a hub name that cannot be loaded.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from speechkit.utils.files import loading, read_json

        path = check_text_lm(name_or_path)
        local = path.is_dir()
        info = read_json(path / TEXT_LM_INFO, TextLMError) if local and (path / TEXT_LM_INFO).is_file() else {}
        norm = normalize or info.get("normalize", "none")
        if norm not in NORMALIZATIONS:
            raise TextLMError(f"{path / TEXT_LM_INFO}: normalize must be one of {NORMALIZATIONS}. Found {norm!r}")
        source = str(path) if local else str(name_or_path)
        with loading(source, "Hugging Face causal LM with its tokenizer", TextLMError):
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local)
        return cls(model.to(device), tokenizer, normalize=norm, name=source, **options)

    def prepare(self, text: str) -> str:
        """``text`` in the form the LM scores (normalised when the LM asks for it, else stripped)."""
        from speechkit.metrics.wer import normalize_text

        return normalize_text(text) if self.normalize == "asr" else " ".join(text.split())

    def _encode(self, text: str, context: str | None) -> tuple[list[int], int]:
        """Token ids (context first) and how many leading tokens are context only (not scored)."""
        tok = self.tokenizer
        bos = getattr(tok, "bos_token_id", None)
        if context:
            head = list(tok(context, add_special_tokens=False)["input_ids"])
            body = list(tok(" " + text, add_special_tokens=False)["input_ids"])
        else:
            head, body = [], list(tok(text, add_special_tokens=False)["input_ids"])
        prefix = [bos] if bos is not None else []
        ids = prefix + head + body
        if not prefix and not head:  # no BOS: the first token has nothing to be predicted from
            return ids, 1
        return ids, len(prefix) + len(head)

    def nll(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None) -> list[tuple[float, int]]:
        """Summed negative log-likelihood (nats) of each text's tokens and their number.

        A text with no words (after :meth:`prepare`) gives ``(nan, 0)``. Contexts (e.g. prompt transcripts)
        condition the text without being scored.

        Raises:
            TextLMError: a text (with its context) longer than the LM's context.
        """
        contexts = list(contexts) if contexts is not None else [None] * len(texts)
        if len(contexts) != len(texts):
            raise TextLMError(f"got {len(texts)} texts and {len(contexts)} contexts; they must pair up")
        out: list[tuple[float, int]] = [(math.nan, 0)] * len(texts)
        jobs = []
        for i, (text, ctx) in enumerate(zip(texts, contexts, strict=True)):
            text, ctx = self.prepare(text or ""), self.prepare(ctx) if ctx else None
            if not text:
                continue
            ids, skip = self._encode(text, ctx)
            if len(ids) - skip < 1:
                continue
            if self.max_tokens is not None and len(ids) > self.max_tokens:
                raise TextLMError(f"{self.name}: text {i} has {len(ids)} tokens with its context, more than the LM's "
                                  f"context of {self.max_tokens}: {text[:60]!r}")
            jobs.append((i, ids, skip))
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start:start + self.batch_size]
            for (i, ids, skip), value in zip(batch, self._score(batch), strict=True):
                out[i] = (value, len(ids) - skip)
        return out

    @torch.inference_mode()
    def _score(self, batch: list[tuple[int, list[int], int]]) -> list[float]:
        device = next(self.model.parameters()).device
        longest = max(len(ids) for _, ids, _ in batch)
        pad = self.tokenizer.pad_token_id if getattr(self.tokenizer, "pad_token_id", None) is not None else 0
        x = torch.full((len(batch), longest), pad, dtype=torch.long)
        scored = torch.zeros((len(batch), longest - 1))
        for row, (_, ids, skip) in enumerate(batch):
            x[row, :len(ids)] = torch.tensor(ids)
            scored[row, max(skip, 1) - 1:len(ids) - 1] = 1.0  # predictions of tokens skip .. len-1
        logits = self.model(input_ids=x.to(device), use_cache=False).logits[:, :-1].float().cpu()  # right padding:
        logp = logits.gather(-1, x[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)     # causal, so pads are inert
        return [float(v) for v in -(logp * scored).sum(-1)]

    def genppl(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None) -> list[float]:
        """Per-text perplexity ``exp(nll / tokens)``; NaN for a text with no words."""
        return [math.exp(n / t) if t else math.nan for n, t in self.nll(texts, contexts)]

    def flops(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None) -> float:
        """≈ FLOPs of scoring ``texts``: ``2 x parameters x tokens`` (context tokens included)."""
        params = sum(p.numel() for p in self.model.parameters())
        contexts = list(contexts) if contexts is not None else [None] * len(texts)
        tokens = 0
        for text, ctx in zip(texts, contexts, strict=True):
            text = self.prepare(text or "")
            if text:
                tokens += len(self._encode(text, self.prepare(ctx) if ctx else None)[0])
        return 2.0 * params * tokens


def aggregate_genppl(nll_means: Sequence[float]) -> float:
    """Folder GenPPL: ``exp`` of the mean per-file NLL per token, NaNs (no words) left out; NaN when none has
    words."""
    values = [v for v in nll_means if v is not None and not math.isnan(v)]
    return math.exp(sum(values) / len(values)) if values else math.nan


def check_text_lm(name_or_path: str | os.PathLike | None) -> Path:
    """Where a text LM is (a folder, or a hub name as a path), checked without loading it.

    Raises:
        TextLMError: a path (absolute, relative with a folder part, or existing) that is not a folder with a
            ``config.json``.
    """
    from speechkit.hub import local_model_dir

    spec = str(name_or_path or DEFAULT_TEXT_LM)
    path = local_model_dir(spec)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TextLMError(f"text LM {path}: no config.json; expected a Hugging Face causal-LM folder")
        return path
    if path.exists() or path.is_absolute() or spec.startswith((".", "checkpoints/")) or spec.count("/") > 1:
        raise TextLMError(f"text LM {spec}: no such folder (give a Hugging Face causal-LM folder with config.json "
                          "and tokenizer files, or a hub name such as meta-llama/Llama-3.2-1B)")
    return path


def write_text_lm_info(folder: str | os.PathLike, normalize: str, **info) -> None:
    """Writes ``text_lm.json`` beside a saved text LM (how its training text was normalised)."""
    from speechkit.utils.files import write_json

    if normalize not in NORMALIZATIONS:
        raise TextLMError(f"normalize must be one of {NORMALIZATIONS}. Found {normalize!r}")
    write_json(Path(folder) / TEXT_LM_INFO, {"format": "speechkit-text-lm", "normalize": normalize, **info},
               indent=2)

