"""``UnitLM``: a transformers causal LM over speech units, with scoring, sampling and a self-describing folder.

Example:
    >>> from speechkit.ulm import UnitLM
    >>> lm = UnitLM.warm_start("checkpoints/textlm", num_units=100)   # TWIST initialisation
    >>> lm.token_ids([3, 4])                        # [1, 5, 6, 1]: BOS, units + 2, EOS
    >>> lm.log_likelihood([[3, 4, 9], [7]])          # tensor([ll_0, ll_1]): mean log-prob per scored token
    >>> lm.generate([3, 4], max_new_tokens=50, temperature=0.8, seed=0)   # tensor of unit ids
    >>> lm.save_pretrained("runs/ulm/model"); UnitLM.from_pretrained("runs/ulm/model")
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from speechkit.ulm.config import UnitLMError, UnitVocab
from speechkit.utils.files import atomic_open

__all__ = ["UnitLM", "METADATA_FILE", "token_log_likelihood"]

METADATA_FILE = "unit_lm.json"
FORMAT_VERSION = 1


@torch.inference_mode()
def token_log_likelihood(model, token_seqs: list[list[int]], *, reduction: str = "mean", batch_size: int = 32,
                         pad_id: int = 0) -> torch.Tensor:
    """Log-probability of each token sequence under an HF causal LM, summed over every token after the first
    (``"mean"``: divided by that count). The scoring used by :meth:`UnitLM.log_likelihood` and by text LMs.

    Sequences are sorted by length and scored ``batch_size`` at a time, right-padded with ``pad_id``: causal
    attention never looks ahead, so pads cannot change a real token's prediction and no attention mask is needed
    (without one, attention takes its fast causal path); pads are only left out of the sums.

    Args:
        model: transformers causal LM.
        token_seqs: token id lists, each at least 2 long.
        reduction: ``"mean"`` or ``"sum"``.
        batch_size: sequences per forward pass.
        pad_id: any valid token id.

    Returns:
        ``(len(token_seqs),)`` float32 on the CPU, in input order.
    """
    device = next(model.parameters()).device
    scores = torch.empty(len(token_seqs), dtype=torch.float32)
    order = sorted(range(len(token_seqs)), key=lambda i: -len(token_seqs[i]))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = [token_seqs[i] for i in chunk]
            longest = max(len(t) for t in batch)
            x = torch.full((len(batch), longest), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, t in enumerate(batch):
                x[row, :len(t)] = torch.tensor(t)
                mask[row, :len(t)] = 1
            x, mask = x.to(device), mask.to(device)
            logits = model(input_ids=x, use_cache=False).logits[:, :-1].float()             # (B, T-1, V)
            token_logp = logits.gather(-1, x[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)  # (B, T-1)
            scored = mask[:, 1:].to(token_logp.dtype)
            total = (token_logp * scored).sum(-1)
            if reduction == "mean":
                total = total / scored.sum(-1)
            scores[chunk] = total.cpu()
    finally:
        model.train(was_training)
    return scores


class UnitLM:
    """A causal LM over unit tokens.

    Attributes:
        model: the underlying transformers model (``PreTrainedModel``), e.g. ``OPTForCausalLM``.
        vocab: the :class:`UnitVocab` (how units map to token ids).
        info: provenance (``{"init": "warm", "text_lm": ...}``), saved with the model.
    """

    def __init__(self, model, vocab: UnitVocab, *, info: dict | None = None):
        vocab.validate()
        size = model.get_input_embeddings().weight.shape[0]
        if size < vocab.min_vocab_size:
            raise UnitLMError(f"the model's vocabulary ({size} tokens) is smaller than the unit layout needs "
                              f"({vocab.min_vocab_size})")
        self.model = model
        self.vocab = vocab
        self.info = dict(info or {})

    # ---------------------------------------------------------------- construction
    @classmethod
    def warm_start(cls, text_lm_dir: str | os.PathLike, num_units: int, *, embedding_init: str = "text_stats",
                   seed: int = 0, dtype: torch.dtype = torch.float32) -> UnitLM:
        """TWIST initialisation: a unit LM with the transformer weights of a text LM
        (:func:`speechkit.ulm.factory.warm_start_model`).

        Args:
            text_lm_dir: HF causal LM folder (OPT, Llama, Qwen2, GPT-2, ...).
            num_units: unit vocabulary size K.
            embedding_init: ``"text_stats"`` (default) or ``"text_rows"``; see :mod:`speechkit.ulm.factory`.
            seed: seed of the new embedding rows.
            dtype: parameter dtype (float32 for training; the text LM's own dtype is not kept).

        Returns:
            The unit LM in eval mode.

        Raises:
            UnitLMError: ``text_lm_dir`` is not a causal LM folder.

        Example:
            >>> lm = UnitLM.warm_start("checkpoints/textlm", num_units=100)
            >>> lm.token_ids([5, 7])
            [1, 7, 9, 1]
        """
        from speechkit.ulm.factory import warm_start_model

        model, vocab = warm_start_model(text_lm_dir, num_units, embedding_init=embedding_init, seed=seed, dtype=dtype)
        info = {"init": "warm", "text_lm": str(text_lm_dir), "embedding_init": embedding_init, "seed": seed}
        return cls(model.eval(), vocab, info=info)

    @classmethod
    def cold_start(cls, architecture, num_units: int, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> UnitLM:
        """A unit LM of a given architecture, randomly initialised (transformers' own init;
        :func:`speechkit.ulm.factory.cold_start_model`).

        Args:
            architecture: an HF causal LM folder (only its ``config.json`` is read) or a ``PretrainedConfig``.
            num_units: unit vocabulary size K.
            seed: seed of the random initialisation (the global RNG state is restored afterwards).
            dtype: parameter dtype.

        Returns:
            The unit LM in eval mode.
        """
        from transformers import PretrainedConfig

        from speechkit.ulm.factory import cold_start_model

        model, vocab = cold_start_model(architecture, num_units, seed=seed, dtype=dtype)
        source = type(architecture).__name__ if isinstance(architecture, PretrainedConfig) else str(architecture)
        return cls(model.eval(), vocab, info={"init": "cold", "architecture": source, "seed": seed})

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *, dtype: torch.dtype | None = None,
                        device: str | torch.device | None = None) -> UnitLM:
        """Loads a speechkit unit LM folder, a TWIST release or a slamkit model (detected from the files), or a
        model card by name (``"TWIST-350M"``, through :mod:`speechkit.hub`).

        Args:
            folder: the model folder.
            dtype: parameter dtype (default float32).
            device: where to put the model (default CPU).

        Raises:
            UnitLMError: not a unit LM folder; the message says what was found and what to do.
        """
        from speechkit import hub

        if hub.is_card_name(folder):  # a released model by name (e.g. "TWIST-350M"), fetched and unzipped
            _, files = hub.fetch_kind(str(folder), "unit-lm")
            folder = files["folder"] / "ulm" if "folder" in files else files["model"]
        from speechkit.utils.files import loading

        d = Path(folder)
        with loading(d, "unit-LM folder", UnitLMError):
            lm = cls._load_folder(d, dtype)
        return lm.to(device) if device is not None else lm

    @classmethod
    def _load_folder(cls, d: Path, dtype: torch.dtype | None) -> UnitLM:
        from transformers import AutoModelForCausalLM

        from speechkit.ulm.interop import detect_format, load_slamkit, load_twist
        from speechkit.utils.files import read_json

        fmt = detect_format(d)
        if fmt == "twist":
            model, vocab = load_twist(d, dtype=dtype)
            info = {"init": "twist-release", "source": str(d)}
        elif fmt == "slamkit":
            model, vocab = load_slamkit(d, dtype=dtype)
            info = {"init": "slamkit-release", "source": str(d)}
        else:
            meta_path = d / METADATA_FILE
            meta = read_json(meta_path, UnitLMError)
            if "vocab" not in meta:
                raise UnitLMError(f"{meta_path}: expected an object with key 'vocab'")
            if meta.get("version", 0) > FORMAT_VERSION:
                raise UnitLMError(f"{meta_path}: format version {meta['version']} is newer than this speechkit "
                                  f"reads ({FORMAT_VERSION})")
            vocab = UnitVocab.from_dict(meta["vocab"], source=str(meta_path))
            try:
                model = AutoModelForCausalLM.from_pretrained(str(d), dtype=dtype or torch.float32)
            except Exception as e:  # noqa: BLE001 - OSError, ValueError, SafetensorError on a corrupt folder
                raise UnitLMError(f"{d}: could not load the model weights ({type(e).__name__}: "
                                  f"{str(e)[:300]})") from None
            info = meta.get("info", {})
        return cls(model.eval(), vocab, info=info)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Writes an HF folder (``config.json`` + ``model.safetensors``) plus ``unit_lm.json`` (layout, provenance).

        The folder loads with :meth:`from_pretrained`, and with ``transformers.AutoModelForCausalLM`` alone.
        """
        from speechkit.utils.checkpoint import unwrap

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        unwrap(self.model).save_pretrained(str(out), safe_serialization=True)
        with atomic_open(out / METADATA_FILE) as f:
            json.dump({"format": "speechkit-unit-lm", "version": FORMAT_VERSION, "vocab": self.vocab.to_dict(),
                       "info": self.info}, f, indent=2)
        return out

    # ---------------------------------------------------------------- helpers
    @property
    def num_units(self) -> int:
        return self.vocab.num_units

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_positions(self) -> int | None:
        """Longest token sequence the model accepts (``max_position_embeddings``), if the config says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def to(self, device) -> UnitLM:
        self.model.to(device)
        return self

    def token_ids(self, units) -> list[int]:
        """The exact token ids the LM sees for a unit sequence (special tokens included).

        Args:
            units: unit ids in ``[0, num_units)`` (list, 1-D tensor or array).

        Returns:
            A list of ints: ``[BOS] + [u + unit_offset ...] + [EOS]`` in the speechkit/slamkit layout,
            ``[u + offset ...]`` for TWIST.

        Raises:
            UnitLMError: a unit id out of range or not an integer.
        """
        return self.vocab.token_ids(units)

    def _check_length(self, n: int, name: str) -> None:
        if self.max_positions is not None and n > self.max_positions:
            raise UnitLMError(f"{name}: {n} tokens exceed the model's context of {self.max_positions} "
                              "(max_position_embeddings); split the sequence")

    # ---------------------------------------------------------------- scoring
    @torch.inference_mode()
    def log_likelihood(self, seqs, reduction: str = "mean", *, batch_size: int = 32) -> torch.Tensor:
        """Log-likelihood of each unit sequence under the LM.

        The score of a sequence is the log-probability the LM gives to ``token_ids(units)``, summed over every
        token after the first (each predicted from the tokens before it; the first token has no prediction).
        With the speechkit/slamkit layout that is every unit and the final EOS, given BOS; with TWIST's layout,
        every unit but the first. ``reduction="mean"`` divides by that number of tokens (slamkit's default,
        which removes the length bias); ``"sum"`` does not.

        Sequences are sorted by length and scored ``batch_size`` at a time (:func:`token_log_likelihood`); the
        result does not depend on the batching.

        Args:
            seqs: a list of unit sequences (lists, 1-D tensors or arrays), or a ``(batch, length)`` tensor.
            reduction: ``"mean"`` or ``"sum"``.
            batch_size: sequences per forward pass.

        Returns:
            ``(len(seqs),)`` float32 tensor on the CPU.

        Raises:
            UnitLMError: an empty sequence, a unit id out of range, a sequence longer than the context, or
                ``seqs`` not a list of sequences.
        """
        if reduction not in ("mean", "sum"):
            raise UnitLMError(f"reduction must be 'mean' or 'sum'. Found {reduction!r}")
        if batch_size < 1:
            raise UnitLMError(f"batch_size must be >= 1. Found {batch_size}")
        ids = self._batch_token_ids(seqs)
        return token_log_likelihood(self.model, ids, reduction=reduction, batch_size=batch_size,
                                    pad_id=self.vocab.pad_id)

    def _batch_token_ids(self, seqs) -> list[list[int]]:
        if isinstance(seqs, torch.Tensor):
            if seqs.dim() != 2:
                raise UnitLMError(f"seqs: a tensor must be (batch, length); found shape {tuple(seqs.shape)}")
            seqs = list(seqs)
        if not isinstance(seqs, Sequence) or isinstance(seqs, str | bytes):
            raise UnitLMError(f"seqs: expected a list of unit sequences, found {type(seqs).__name__}")
        ids = []
        for i, s in enumerate(seqs):
            if isinstance(s, int):
                raise UnitLMError(f"seqs[{i}] is an int: pass a list of sequences, e.g. [units] for one sequence")
            if len(s) == 0:
                raise UnitLMError(f"seqs[{i}] is empty: a sequence needs at least one unit")
            t = self.vocab.token_ids(s, name=f"seqs[{i}]")
            if len(t) < 2:
                raise UnitLMError(f"seqs[{i}] gives {len(t)} token: the log-likelihood scores every token after "
                                  "the first, so this layout needs at least 2 units")
            self._check_length(len(t), f"seqs[{i}]")
            ids.append(t)
        return ids

    # ---------------------------------------------------------------- generation
    def generate(self, prompt_units, max_new_tokens: int = 100, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None, stop_on_eos: bool = True,
                 cache=None) -> torch.Tensor:
        """Samples a continuation of a unit prompt.

        Only unit tokens are ever drawn (and the end token, which stops generation when ``stop_on_eos``).

        Args:
            prompt_units: unit ids; may be empty when the layout has a BOS token (unconditional sampling).
            max_new_tokens: most units to generate.
            temperature: softmax temperature; 0 = greedy.
            top_k: sample among the k most likely units.
            top_p: nucleus sampling mass.
            seed: makes the sample reproducible (same seed, same model, same result).
            stop_on_eos: stop at the end token (speechkit/slamkit layouts) instead of ignoring it.
            cache: a bounded KV cache from :mod:`speechkit.ulm.cache` (e.g. ``TOVACache(cache_size=512)``, a fresh
                one per call) for flat memory; ``None`` keeps every token. With a cache, rotary models (Llama,
                Qwen2) may generate past ``max_position_embeddings``; learned-position models (OPT) may not.

        Returns:
            ``(new_units,)`` int64 tensor of unit ids in ``[0, num_units)``, the continuation only.

        Raises:
            UnitLMError: bad unit ids or sampling arguments, an empty prompt without BOS, or a prompt plus
                ``max_new_tokens`` longer than the context.
        """
        from speechkit.ulm.generate import check_sampling, sample_units

        check_sampling(max_new_tokens, temperature, top_k, top_p)
        prompt = self.vocab.token_ids(prompt_units, name="prompt_units", append_eos=False)
        if not prompt:
            raise UnitLMError("prompt_units is empty and this layout has no BOS token: give at least one unit")
        rotary = hasattr(self.model.config, "rope_theta")
        self._check_length(len(prompt) + (0 if cache is not None and rotary else max_new_tokens),
                           "prompt_units + max_new_tokens")
        if cache is not None:
            from speechkit.ulm.cache import generate_with_cache

            size = self.model.get_output_embeddings().weight.shape[0]
            allowed = torch.zeros(size, dtype=torch.bool)
            allowed[self.vocab.unit_offset:self.vocab.unit_offset + self.num_units] = True
            eos = self.vocab.eos_id if stop_on_eos else None
            if eos is not None:
                allowed[eos] = True
            new = generate_with_cache(self.model, torch.tensor(prompt), max_new_tokens, cache=cache,
                                      do_sample=temperature > 0, temperature=temperature or 1.0, top_k=top_k,
                                      top_p=top_p, seed=seed, stop_on_eos=eos is not None, eos_token_id=eos,
                                      allowed_token_ids=allowed)
            new = new[:-1] if eos is not None and len(new) and int(new[-1]) == eos else new
            return new - self.vocab.unit_offset
        was_training = self.model.training
        self.model.eval()
        try:
            return sample_units(self.model, self.vocab, prompt, max_new_tokens=max_new_tokens,
                                temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                                stop_on_eos=stop_on_eos)
        finally:
            self.model.train(was_training)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return (f"UnitLM({type(self.model).__name__}, {n / 1e6:.2f}M params, num_units={self.num_units}, "
                f"layout={self.vocab.layout!r})")
