"""Fixed-size KV caches for long generation: TOVA and the baselines it is compared with.

A decoder LM keeps one key/value pair per past token; for speech units (25-50 tokens a second) that grows to
hundreds of MB for a few minutes of audio. The policies here hold at most ``cache_size`` entries per layer:

- :class:`TOVACache` ("Transformers are Multi-State RNNs", Oren et al. 2024): after each attention step, keep the
  ``cache_size`` tokens with the highest attention from the current query (last query row of the post-softmax
  weights, averaged over all query heads; one index set for every KV head of the layer; each layer on its own).
- :class:`WindowCache`: the ``cache_size`` most recent tokens.
- :class:`SinkCache`: window + the first ``num_sinks`` tokens (StreamingLLM's attention sinks).
- :class:`H2OCache`: heavy hitters by accumulated attention (summed over every query so far, averaged over heads)
  + a recent window (H2O, Zhang et al. 2023), one index set per layer as for TOVA.

Behaviour follows the TOVA repository (schwartz-lab-NLP/TOVA, transformers 4.36): the prompt is reduced to
``cache_size`` right after its forward pass; each new token is appended and attended to before the cache is
trimmed (so it can be evicted at once); positions (rotary angles, OPT's learned positions) keep counting from the
true sequence length, so cached keys keep the positions they were computed with. All four policies use that
same position rule (StreamingLLM's re-numbering inside the cache is not applied).

Eviction happens in a forward hook on each attention module, so the model code is not patched; policies that
score tokens (TOVA, H2O) need the attention weights, which only the ``eager`` attention returns:
:func:`generate_with_cache` switches the model to eager for their run and restores it after.

Example::

    from speechkit.ulm.cache import TOVACache, generate_with_cache
    cache = TOVACache(cache_size=512)
    new_ids = generate_with_cache(hf_model, input_ids, max_new_tokens=20_000, cache=cache)
    cache.peak_size   # <= 512: the most entries any layer held after a step
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from transformers.cache_utils import DynamicCache

from speechkit.ulm.generate import filter_logits

__all__ = ["EvictingCache", "H2OCache", "SinkCache", "TOVACache", "WindowCache", "generate_with_cache",
           "log_likelihood_with_cache", "make_cache", "POLICIES"]


class EvictingCache(DynamicCache):
    """A ``DynamicCache`` that :func:`generate_with_cache` trims to ``cache_size`` entries per layer.

    Subclasses choose which entries survive (:meth:`_keep`). Attributes after a generation: ``seen_tokens`` (the
    true sequence length fed so far), ``peak_size`` (most entries any layer held after a step's eviction) and
    ``positions`` (per layer, ``(batch, entries)`` true positions of the cached tokens).

    Args:
        cache_size: entries kept per layer (>= 1).
    """

    needs_scores = False  # whether the policy reads the attention weights (eager attention)

    def __init__(self, cache_size: int):
        if not isinstance(cache_size, int) or isinstance(cache_size, bool) or cache_size < 1:
            raise ValueError(f"cache_size must be an integer >= 1. Found {cache_size!r}")
        super().__init__()
        self.cache_size = cache_size
        self.clear()

    def clear(self) -> None:
        """Empties the cache (a new generation starts from here)."""
        self.layers = []
        self.seen_tokens = 0
        self.peak_size = 0
        self.positions: dict[int, torch.Tensor] = {}

    def evict(self, layer_idx: int, attn_weights: torch.Tensor | None) -> None:
        """Trims layer ``layer_idx`` to ``cache_size`` after its attention step.

        Args:
            layer_idx: the attention layer.
            attn_weights: ``(batch, query_heads, queries, entries)`` post-softmax weights of the step (``None``
                for policies that do not score).
        """
        layer = self.layers[layer_idx]
        batch, _, n, _ = layer.keys.shape
        pos = self.positions.get(layer_idx)
        new = n - (0 if pos is None else pos.shape[1])
        fresh = torch.arange(self.seen_tokens - new, self.seen_tokens, device=layer.keys.device)
        fresh = fresh.expand(batch, new)
        pos = fresh if pos is None else torch.cat([pos, fresh], dim=1)
        if self.needs_scores and attn_weights is None:
            raise RuntimeError(f"{type(self).__name__} needs attention weights: run the model with eager attention")
        self._observe(layer_idx, attn_weights)
        if n > self.cache_size:
            keep = self._keep(layer_idx, attn_weights, pos)  # (batch, cache_size), ascending
            index = keep[:, None, :, None]  # the same entries for every KV head of the layer
            layer.keys = torch.gather(layer.keys, 2, index.expand(-1, layer.keys.shape[1], -1, layer.keys.shape[3]))
            layer.values = torch.gather(layer.values, 2,
                                        index.expand(-1, layer.values.shape[1], -1, layer.values.shape[3]))
            pos = torch.gather(pos, 1, keep)
            self._kept(layer_idx, keep)
        self.positions[layer_idx] = pos
        self.peak_size = max(self.peak_size, layer.keys.shape[-2])

    def _observe(self, layer_idx: int, attn_weights: torch.Tensor | None) -> None:
        """Hook for policies with state (H2O): sees every step's weights before eviction."""

    def _kept(self, layer_idx: int, keep: torch.Tensor) -> None:
        """Hook for policies with state: the entries ``keep`` survived."""

    def _keep(self, layer_idx: int, attn_weights: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cache_size={self.cache_size})"


class TOVACache(EvictingCache):
    """TOVA: keep the ``cache_size`` entries the current (last) query attends to most, averaged over heads.

    Example::

        new_ids = generate_with_cache(model, input_ids, max_new_tokens=1000, cache=TOVACache(cache_size=128))
    """

    needs_scores = True

    def _keep(self, layer_idx, attn_weights, positions):
        scores = attn_weights[:, :, -1, :].mean(dim=1)  # (B, entries): last query row, mean over query heads
        keep = torch.topk(scores, k=self.cache_size, dim=-1).indices
        return torch.sort(keep, dim=-1).values


class WindowCache(EvictingCache):
    """Sliding window: the ``cache_size`` most recent entries."""

    def _keep(self, layer_idx, attn_weights, positions):
        batch, n = positions.shape
        keep = torch.arange(n - self.cache_size, n, device=positions.device)
        return keep.expand(batch, -1)


class SinkCache(EvictingCache):
    """StreamingLLM: the first ``num_sinks`` tokens of the sequence + the most recent ones, ``cache_size`` in all.

    Args:
        cache_size: entries per layer; must exceed ``num_sinks``.
        num_sinks: attention-sink tokens kept from the start (StreamingLLM uses 4).
    """

    def __init__(self, cache_size: int, num_sinks: int = 4):
        if not isinstance(num_sinks, int) or num_sinks < 0:
            raise ValueError(f"num_sinks must be an integer >= 0. Found {num_sinks!r}")
        if isinstance(cache_size, int) and cache_size <= num_sinks:
            raise ValueError(f"cache_size must exceed num_sinks ({num_sinks}) to leave room for a window. "
                             f"Found {cache_size}")
        super().__init__(cache_size)
        self.num_sinks = num_sinks

    def _keep(self, layer_idx, attn_weights, positions):
        batch, n = positions.shape
        device = positions.device
        keep = torch.cat([torch.arange(self.num_sinks, device=device),
                          torch.arange(n - (self.cache_size - self.num_sinks), n, device=device)])
        return keep.expand(batch, -1)

    def __repr__(self) -> str:
        return f"SinkCache(cache_size={self.cache_size}, num_sinks={self.num_sinks})"


class H2OCache(EvictingCache):
    """H2O: ``recent`` most recent entries + the rest by accumulated attention (heavy hitters).

    An entry's score is the attention it has received from every query since it entered the cache (summed over
    queries, averaged over query heads); evicted entries lose theirs.

    Args:
        cache_size: entries per layer.
        recent: size of the recent window (default ``cache_size // 2``, H2O's equal split).
    """

    needs_scores = True

    def __init__(self, cache_size: int, recent: int | None = None):
        super().__init__(cache_size)
        self.recent = cache_size // 2 if recent is None else recent
        if not 0 <= self.recent < cache_size:
            raise ValueError(f"recent must be in [0, cache_size={cache_size}). Found {self.recent}")

    def clear(self) -> None:
        super().clear()
        self.scores: dict[int, torch.Tensor] = {}

    def _observe(self, layer_idx, attn_weights):
        step = attn_weights.float().mean(dim=1).sum(dim=1)  # (B, entries)
        old = self.scores.get(layer_idx)
        if old is not None:
            step[:, :old.shape[1]] += old
        self.scores[layer_idx] = step

    def _keep(self, layer_idx, attn_weights, positions):
        batch, n = positions.shape
        old = n - self.recent  # entries outside the recent window compete on accumulated attention
        heavy = torch.topk(self.scores[layer_idx][:, :old], k=self.cache_size - self.recent, dim=-1).indices
        recent = torch.arange(old, n, device=positions.device).expand(batch, -1)
        return torch.cat([torch.sort(heavy, dim=-1).values, recent], dim=1)

    def _kept(self, layer_idx, keep):
        self.scores[layer_idx] = torch.gather(self.scores[layer_idx], 1, keep)

    def __repr__(self) -> str:
        return f"H2OCache(cache_size={self.cache_size}, recent={self.recent})"


POLICIES = {"tova": TOVACache, "window": WindowCache, "sinks": SinkCache, "h2o": H2OCache}


def make_cache(policy: str | None, cache_size: int | None) -> EvictingCache | None:
    """A fresh cache from a policy name (``tova``, ``window``, ``sinks``, ``h2o``; ``None``/``full`` = full cache).

    Raises:
        ValueError: unknown policy or a policy without ``cache_size``.
    """
    if policy is None or policy == "full":
        return None
    if policy not in POLICIES:
        raise ValueError(f"cache policy must be one of full, {', '.join(POLICIES)}. Found {policy!r}")
    if cache_size is None:
        raise ValueError(f"cache policy {policy!r} needs a cache size")
    return POLICIES[policy](cache_size)


def _attention_modules(model) -> list[torch.nn.Module]:
    mods = [m for m in model.modules()
            if type(m).__name__.endswith("Attention") and isinstance(getattr(m, "layer_idx", None), int)]
    if not mods:
        raise ValueError(f"{type(model).__name__}: no attention modules with a layer_idx found (supported: "
                         "transformers decoder LMs such as Llama, Qwen2, OPT)")
    return mods


@contextlib.contextmanager
def _evicting(model, cache: EvictingCache):
    """Installs the eviction hooks (and eager attention when the policy scores) for the duration."""
    previous = model.config._attn_implementation
    if cache.needs_scores and previous != "eager":
        model.set_attn_implementation("eager")

    def ask_weights(module, args, kwargs):  # OPT's attention drops its weights unless asked
        return args, {**kwargs, "output_attentions": True}

    def hook(module, args, output):
        cache.evict(module.layer_idx, output[1] if isinstance(output, tuple) and len(output) > 1 else None)
        if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
            return (output[0], None, *output[2:])  # the weights are not needed further up: free them now

    handles = []
    for m in _attention_modules(model):
        if cache.needs_scores and "output_attentions" in inspect.signature(m.forward).parameters:
            handles.append(m.register_forward_pre_hook(ask_weights, with_kwargs=True))
        handles.append(m.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        if model.config._attn_implementation != previous:
            model.set_attn_implementation(previous)


def _step(model, step: torch.Tensor, past, cache: EvictingCache | None, start: int, kwargs: dict) -> torch.Tensor:
    """One forward pass of ``step`` ``(batch, n)`` at true positions ``start .. start + n - 1``; returns logits."""
    n = step.shape[1]
    position = torch.arange(start, start + n, device=step.device)
    if cache is not None:
        cache.seen_tokens = start + n  # read by the hooks: true positions of the new entries
    return model(input_ids=step, past_key_values=past, use_cache=True, cache_position=position,
                 position_ids=position[None].expand(step.shape[0], -1), **kwargs).logits


@torch.inference_mode()
def log_likelihood_with_cache(model, input_ids, cache: EvictingCache | None = None) -> torch.Tensor:
    """Teacher-forced log-probabilities of a sequence read one token at a time through a bounded cache.

    The first token is the prompt; each later token is scored from the logits of the step before it, so the
    model sees exactly what it would see when generating that sequence with the policy (the paper's
    perplexity setting). With ``cache=None`` (full cache) this equals one causal forward pass.

    Args:
        model: a transformers causal LM.
        input_ids: ``(length,)`` or ``(batch, length)`` token ids, length >= 2.
        cache: an :class:`EvictingCache` (emptied first) or ``None``.

    Returns:
        ``(length - 1,)`` or ``(batch, length - 1)`` float32 log-probabilities of tokens ``1 .. length - 1``.
    """
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    squeeze = ids.dim() == 1
    ids = (ids[None] if squeeze else ids).to(next(model.parameters()).device)
    if ids.dim() != 2 or ids.shape[1] < 2:
        raise ValueError(f"input_ids must be (length,) or (batch, length) with length >= 2. Found {tuple(ids.shape)}")
    keep_logits, past, was_training = _start(model, cache)
    scores = []
    try:
        with _evicting(model, cache) if cache is not None else contextlib.nullcontext():
            for t in range(ids.shape[1] - 1):
                logits = _step(model, ids[:, t:t + 1], past, cache, t, keep_logits)[:, -1].float()
                scores.append(logits.log_softmax(-1).gather(1, ids[:, t + 1:t + 2])[:, 0].cpu())
    finally:
        model.train(was_training)
    out = torch.stack(scores, dim=1)
    return out[0] if squeeze else out


def _eos_ids(model, eos_token_id) -> set[int]:
    if eos_token_id is None:
        eos_token_id = getattr(model.generation_config, "eos_token_id", None)
    if eos_token_id is None:
        return set()
    return {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id)


@torch.inference_mode()
def generate_with_cache(model, input_ids, max_new_tokens: int, cache: EvictingCache | None = None, *,
                        do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                        top_p: float | None = None, seed: int | None = None, stop_on_eos: bool = True,
                        eos_token_id: int | list[int] | None = None,
                        allowed_token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Generates with a transformers causal LM and a bounded KV cache, one token at a time.

    The prompt is run in one forward pass (then trimmed to ``cache_size``), then one token per step; positions
    are the true ones (``cache_position``/``position_ids`` passed explicitly), whatever the cache holds.

    Args:
        model: a transformers causal LM (Llama, Qwen2, OPT and others with ``layer_idx`` attention modules).
        input_ids: ``(prompt,)`` or ``(batch, prompt)`` token ids.
        max_new_tokens: tokens to generate.
        cache: an :class:`EvictingCache` (emptied first; holds the final state after the call) or ``None`` for
            the full cache.
        do_sample: sample (temperature, top-k, top-p) instead of greedy decoding.
        temperature, top_k, top_p: sampling filters (see :func:`speechkit.ulm.generate.filter_logits`).
        seed: seed of the CPU generator that draws samples.
        stop_on_eos: stop once every row has produced an end token (it is returned, as ``model.generate`` does;
            finished rows are padded with it).
        eos_token_id: end token(s); default ``model.generation_config.eos_token_id``.
        allowed_token_ids: ``(vocab,)`` bool mask; only these tokens can be chosen.

    Returns:
        ``(new,)`` or ``(batch, new)`` int64 tensor of the generated ids (the prompt is not included).

    Example::

        ids = generate_with_cache(model, torch.tensor([[1, 5, 9]]), max_new_tokens=50, cache=TOVACache(16))
    """
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0. Found {max_new_tokens!r}")
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling. Found {temperature}")
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    squeeze = ids.dim() == 1
    ids = ids[None] if squeeze else ids
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise ValueError(f"input_ids must be (prompt,) or (batch, prompt) with a non-empty prompt. "
                         f"Found shape {tuple(ids.shape)}")
    device = next(model.parameters()).device
    ids = ids.to(device)
    batch, prompt_len = ids.shape
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    eos = _eos_ids(model, eos_token_id) if stop_on_eos else set()
    keep_logits, past, was_training = _start(model, cache)
    out_ids: list[torch.Tensor] = []
    done = torch.zeros(batch, dtype=torch.bool)
    try:
        with _evicting(model, cache) if cache is not None else contextlib.nullcontext():
            step, start = ids, 0
            for _ in range(max_new_tokens):
                logits = _step(model, step, past, cache, start, keep_logits)[:, -1].float().cpu()
                start += step.shape[1]
                if allowed_token_ids is not None:
                    logits[:, ~allowed_token_ids.cpu()] = float("-inf")
                if do_sample and temperature > 0:
                    probs = torch.stack([filter_logits(row / temperature, top_k, top_p).softmax(-1) for row in logits])
                    token = torch.multinomial(probs, 1, generator=gen)[:, 0]
                else:
                    token = logits.argmax(-1)
                if eos:
                    token = torch.where(done, torch.tensor(min(eos)), token)
                    done |= torch.isin(token, torch.tensor(sorted(eos)))
                out_ids.append(token)
                if eos and bool(done.all()):
                    break
                step = token[:, None].to(device)
    finally:
        model.train(was_training)
    new = torch.stack(out_ids, dim=1) if out_ids else torch.zeros(batch, 0, dtype=torch.long)
    return new[0] if squeeze else new


def _start(model, cache):
    """Shared set-up of the step loops: logits of the last position only where the model supports it, a fresh
    (or cleared) cache, eval mode (the previous mode is returned so the caller can restore it)."""
    keep_logits = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    past = DynamicCache() if cache is None else cache
    if cache is not None:
        cache.clear()
    was_training = model.training
    model.eval()
    return keep_logits, past, was_training
