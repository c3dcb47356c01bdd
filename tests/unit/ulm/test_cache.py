"""KV-cache eviction policies (speechkit.ulm.cache): TOVA against the TOVA repository's own ids, exactness when
nothing is evicted, bounded size, hand-checked eviction rules, and true positions (rotary and learned)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from speechkit.ulm.cache import (
    H2OCache,
    SinkCache,
    TOVACache,
    WindowCache,
    generate_with_cache,
    log_likelihood_with_cache,
    make_cache,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "ulm_cache"
POLICIES = {"tova": TOVACache, "window": WindowCache, "sinks": SinkCache, "h2o": H2OCache}


def tiny_model(arch: str, seed: int = 0, attn: str = "sdpa"):
    from transformers import AutoModelForCausalLM, LlamaConfig, OPTConfig, Qwen2Config

    common = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=256)
    if arch == "llama":
        cfg = LlamaConfig(**common, intermediate_size=64, num_key_value_heads=2, initializer_range=0.3)
    elif arch == "qwen2":
        cfg = Qwen2Config(**common, intermediate_size=64, num_key_value_heads=2, initializer_range=0.3)
    elif arch == "opt":
        cfg = OPTConfig(**common, ffn_dim=64, word_embed_proj_dim=32, init_std=0.3, pad_token_id=1,
                        bos_token_id=2, eos_token_id=2)
    else:
        raise ValueError(arch)
    cfg._attn_implementation = attn
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg).eval()


def prompt(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 64, (n,), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ TOVA repository reference
@pytest.mark.slow  # ~600 eager steps: 2-7 s on a shared CPU
def test_tova_matches_reference_ids_token_for_token():
    """ids written by schwartz-lab-NLP/TOVA's own code (transformers 4.36.2, greedy) on a tiny GQA Llama."""
    from safetensors.torch import load_file
    from transformers import LlamaConfig, LlamaForCausalLM

    ref = json.loads((DATA / "tova_reference.json").read_text())
    model = LlamaForCausalLM(LlamaConfig(**ref["config"])).eval()
    model.load_state_dict(load_file(DATA / ref["weights"]))
    assert ref["config"]["num_key_value_heads"] < ref["config"]["num_attention_heads"]  # GQA exercised
    evicting = 0
    for case in ref["cases"]:
        p = torch.tensor(case["prompt"])
        full = generate_with_cache(model, p, len(case["full_ids"]), stop_on_eos=False)
        assert full.tolist() == case["full_ids"]
        cache = TOVACache(cache_size=case["cache_size"])
        ids = generate_with_cache(model, p, len(case["tova_ids"]), cache=cache, stop_on_eos=False)
        assert ids.tolist() == case["tova_ids"], case["cache_size"]
        assert [layer.keys.shape[-2] for layer in cache.layers] == case["final_cache_len"]
        evicting += case["tova_ids"] != case["full_ids"]
    assert evicting >= 3  # the reference cases really evict (their ids differ from the full cache's)


# ------------------------------------------------------------------ exactness without eviction
@pytest.mark.parametrize("arch", ["llama", "qwen2", "opt"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_cache_at_least_sequence_length_equals_full_cache(arch, policy):
    model = tiny_model(arch)
    p = prompt(12)
    full = generate_with_cache(model, p, 30, stop_on_eos=False)
    ids = generate_with_cache(model, p, 30, cache=POLICIES[policy](42), stop_on_eos=False)
    assert torch.equal(ids, full)
    assert model.config._attn_implementation == "sdpa"  # eager only for the scored run


def test_full_cache_matches_hf_generate():
    model = tiny_model("llama")
    p = prompt(10)
    hf = model.generate(p[None], attention_mask=torch.ones(1, 10, dtype=torch.long), max_new_tokens=25,
                        do_sample=False, eos_token_id=None, pad_token_id=0)[0, 10:]
    assert torch.equal(generate_with_cache(model, p, 25, stop_on_eos=False), hf)


# ------------------------------------------------------------------ bounded size
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_cache_never_exceeds_size_during_long_generation(policy):
    model = tiny_model("qwen2")
    cache = POLICIES[policy](16)
    sizes = []
    handle = model.register_forward_hook(lambda m, a, o: sizes.append([lay.keys.shape[-2] for lay in cache.layers]))
    try:
        ids = generate_with_cache(model, prompt(40), 200, cache=cache, stop_on_eos=False)
    finally:
        handle.remove()
    assert len(ids) == 200 and len(sizes) == 200
    assert all(s == [16, 16] for s in sizes)  # trimmed after the prompt and after every step
    assert cache.peak_size == 16 and cache.seen_tokens == 40 + 199


# ------------------------------------------------------------------ eviction rules by hand
def _filled(cache, n: int, kv_heads: int = 2, dim: int = 3):
    """Puts n entries in layer 0 whose keys/values encode their index (entry j -> value j in every slot)."""
    k = torch.arange(n, dtype=torch.float32)[None, None, :, None].expand(1, kv_heads, n, dim).clone()
    cache.update(k, k.clone(), 0)
    cache.seen_tokens = n
    return cache


def _kept(cache) -> list[int]:
    keys = cache.layers[0].keys
    assert torch.equal(keys, cache.layers[0].values)
    assert all(torch.equal(keys[:, 0], keys[:, h]) for h in range(keys.shape[1]))  # one index set for all KV heads
    return keys[0, 0, :, 0].long().tolist()


def test_tova_keeps_highest_mean_attention_of_last_query():
    cache = _filled(TOVACache(3), 6)
    w = torch.zeros(1, 4, 2, 6)  # (B, query heads, queries, entries); only the last query row counts
    w[0, :, 0] = torch.tensor([0, 0, 0, 0, 0, 1.0])  # first row is ignored
    w[0, 0, 1] = torch.tensor([.5, 0, 0, .5, 0, 0])
    w[0, 1, 1] = torch.tensor([0, .6, 0, .4, 0, 0])
    w[0, 2, 1] = torch.tensor([0, 0, .1, .1, .1, .7])
    w[0, 3, 1] = torch.tensor([.3, 0, 0, 0, .7, 0])
    cache.evict(0, w)  # means: .2 .15 .025 .25 .2 .175 -> keep 3, 0 and 4 (tie .2 both kept), in order
    assert _kept(cache) == [0, 3, 4]
    assert cache.positions[0].tolist() == [[0, 3, 4]]


def test_window_and_sinks_keep_what_their_definitions_say():
    window = _filled(WindowCache(4), 9)
    window.evict(0, None)
    assert _kept(window) == [5, 6, 7, 8]
    sinks = _filled(SinkCache(6, num_sinks=2), 9)
    sinks.evict(0, None)
    assert _kept(sinks) == [0, 1, 5, 6, 7, 8]


def test_h2o_accumulates_attention_and_keeps_recent():
    cache = _filled(H2OCache(4, recent=2), 5)
    w = torch.zeros(1, 2, 5, 5)
    w[0, :, :, 1] = 0.5  # entry 1 gets attention from every query: heavy hitter
    w[0, 0, 4, 3] = 1.0  # entry 3 once, one head: 0.5 accumulated
    w[0, 1, 2, 0] = 0.8  # entry 0: 0.4 accumulated
    cache.evict(0, w)  # 5 > 4: recent = 3, 4; heavy among 0..2 by score (0.4, 2.5, 0) -> 0, 1
    assert _kept(cache) == [0, 1, 3, 4]
    assert cache.scores[0][0].tolist() == pytest.approx([0.4, 2.5, 0.5, 0.0])
    cache.update(torch.full((1, 2, 1, 3), 9.0), torch.full((1, 2, 1, 3), 9.0), 0)
    cache.seen_tokens = 6
    w = torch.zeros(1, 2, 1, 5)
    w[0, :, 0, 2] = 1.0  # entry 3 (slot 2) now gets 1.0 more: 1.5 > 0.4 of entry 0
    cache.evict(0, w)  # recent = 4, 9; heavy among (0, 1, 3) -> 1 (2.5), 3 (1.5)
    assert _kept(cache) == [1, 3, 4, 9]
    assert cache.positions[0].tolist() == [[1, 3, 4, 5]]


# ------------------------------------------------------------------ true positions (rotary and learned)
def _band_mask(total: int, prompt_len: int, keep) -> torch.Tensor:
    """Additive (1, 1, total, total) mask: query i attends j <= i in the prompt, then only the kept entries."""
    allowed = torch.zeros(total, total, dtype=torch.bool)
    for i in range(total):
        cols = range(i + 1) if i < prompt_len else keep(i)
        allowed[i, list(cols)] = True
    mask = torch.zeros(total, total)
    mask[~allowed] = torch.finfo(torch.float32).min
    return mask[None, None]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "opt"])
@pytest.mark.parametrize("policy", ["window", "sinks"])
def test_positions_keep_counting_from_true_length(arch, policy):
    """A window/sinks generation equals one full forward pass with the matching band mask at true positions
    0..T-1: query i >= P sees the K entries kept before it plus itself. Positions taken from the cache length
    (K) instead would change the logits (rotary angles for Llama/Qwen2, learned embeddings for OPT)."""
    model = tiny_model(arch, attn="eager")
    size, p_len, n_new = 8, 10, 40
    p = prompt(p_len, seed=3)
    cache = make_cache(policy, size)
    ids = generate_with_cache(model, p, n_new, cache=cache, stop_on_eos=False)
    seq = torch.cat([p, ids[:-1]])
    if policy == "window":
        keep = lambda i: range(max(0, i - size), i + 1)  # noqa: E731
    else:
        keep = lambda i: sorted(set(range(4)) | set(range(i - (size - 4), i + 1)))  # noqa: E731
    with torch.no_grad():
        logits = model(seq[None], attention_mask=_band_mask(len(seq), p_len, keep),
                       position_ids=torch.arange(len(seq))[None]).logits[0]
    assert torch.equal(logits[p_len - 1:].argmax(-1), ids)
    assert cache.positions[0][0, -1].item() == p_len + n_new - 2  # the last fed token sits at its true position


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_teacher_forced_log_likelihood(arch):
    """Full cache: equals one causal forward pass. Window: equals the band-masked forward pass."""
    model = tiny_model(arch, attn="eager")
    seq = prompt(30, seed=4)
    with torch.no_grad():
        ref = model(seq[None]).logits[0, :-1].log_softmax(-1).gather(1, seq[1:, None])[:, 0]
    assert torch.allclose(log_likelihood_with_cache(model, seq), ref, atol=1e-5)
    assert torch.allclose(log_likelihood_with_cache(model, seq, TOVACache(64)), ref, atol=1e-5)
    with torch.no_grad():
        band = model(seq[None], attention_mask=_band_mask(30, 1, lambda i: range(max(0, i - 6), i + 1)),
                     position_ids=torch.arange(30)[None]).logits[0, :-1].log_softmax(-1)
    windowed = log_likelihood_with_cache(model, seq, WindowCache(6))
    assert torch.allclose(windowed, band.gather(1, seq[1:, None])[:, 0], atol=1e-5)
    assert not torch.allclose(windowed, ref, atol=1e-3)


def test_greedy_sampling_and_batch():
    model = tiny_model("llama")
    p = torch.stack([prompt(9, 1), prompt(9, 2)])
    batch = generate_with_cache(model, p, 20, cache=TOVACache(6), stop_on_eos=False)
    rows = [generate_with_cache(model, p[i], 20, cache=TOVACache(6), stop_on_eos=False) for i in range(2)]
    assert batch.shape == (2, 20) and torch.equal(batch[0], rows[0]) and torch.equal(batch[1], rows[1])
    a = generate_with_cache(model, p[0], 20, cache=TOVACache(6), do_sample=True, temperature=1.0, top_k=10, seed=5)
    b = generate_with_cache(model, p[0], 20, cache=TOVACache(6), do_sample=True, temperature=1.0, top_k=10, seed=5)
    assert torch.equal(a, b)
    allowed = torch.zeros(64, dtype=torch.bool)
    allowed[10:20] = True
    c = generate_with_cache(model, p[0], 20, cache=WindowCache(6), allowed_token_ids=allowed, stop_on_eos=False)
    assert ((c >= 10) & (c < 20)).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="cache_size must be an integer >= 1"):
        TOVACache(0)
    with pytest.raises(ValueError, match="must exceed num_sinks"):
        SinkCache(4)
    with pytest.raises(ValueError, match="cache policy must be one of"):
        make_cache("lru", 8)
    assert make_cache("full", None) is None and isinstance(make_cache("h2o", 8), H2OCache)


# ------------------------------------------------------------------ UnitLM.generate(cache=...)
@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_unit_lm_generate_with_cache(tmp_path, arch):
    from speechkit.ulm import UnitLM
    from tests.unit.ulm.conftest import save_tiny_lm

    save_tiny_lm(tmp_path, arch)
    lm = UnitLM.warm_start(tmp_path, num_units=20)
    kw = dict(max_new_tokens=40, temperature=1.0, top_k=8, seed=3, stop_on_eos=False)
    plain = lm.generate([3, 4, 5], **kw)
    roomy = lm.generate([3, 4, 5], cache=TOVACache(64), **kw)  # never full: the same sample as the full cache
    assert torch.equal(plain, roomy)
    cache = TOVACache(8)
    small = lm.generate([3, 4, 5], cache=cache, **kw)
    assert small.shape == (40,) and int(small.min()) >= 0 and int(small.max()) < 20
    assert cache.peak_size == 8
    greedy = lm.generate([3, 4, 5], max_new_tokens=30, temperature=0.0, cache=H2OCache(8))
    assert len(greedy) <= 30 and all(0 <= u < 20 for u in greedy.tolist())


# ------------------------------------------------------------------ SpeechContinuation / speechkit continue
def test_continuation_with_tova_runs_past_the_context_with_flat_memory(tmp_path, capsys):
    from speechkit.audio import io
    from speechkit.cli.main import main
    from speechkit.pipeline import PipelineError, SpeechContinuation
    from speechkit.ulm import UnitLM
    from tests.unit.test_pipeline import K, speech_like, tiny_encoder, tiny_vocoder
    from tests.unit.ulm.conftest import tiny_config

    lm = UnitLM.cold_start(tiny_config("llama", max_position_embeddings=40), num_units=K, seed=0)
    sc = SpeechContinuation(tiny_encoder(), lm, tiny_vocoder())
    sizes = []

    def record(module, args, kwargs, output):
        sizes.append(max(layer.keys.shape[-2] for layer in kwargs["past_key_values"].layers))

    def no_eos(module, args, output):  # a random LM may end at once; this test wants the whole length
        output[..., lm.vocab.eos_id] = float("-inf")

    handles = [lm.model.register_forward_hook(record, with_kwargs=True),
               lm.model.get_output_embeddings().register_forward_hook(no_eos)]
    try:
        units = torch.randint(0, K, (30,), generator=torch.Generator().manual_seed(0))
        new = sc.continue_units(units, 120, seed=1, cache="tova", cache_size=16)  # 3x the context of 40
    finally:
        for h in handles:
            h.remove()
    assert len(new) == 120 and len(sizes) == 120 and max(sizes) == 16
    with pytest.raises(PipelineError, match="do not fit the unit LM's context of 40"):
        sc.continue_units(units, 120, seed=1)  # the full cache cannot
    with pytest.raises(PipelineError, match="needs a cache size"):
        sc.continue_units(units, 10, cache="tova")

    sc.encoder.save_pretrained(tmp_path / "m" / "encoder")
    lm.save_pretrained(tmp_path / "m" / "ulm")
    sc.vocoder.save_pretrained(tmp_path / "m" / "vocoder")
    io.save(tmp_path / "prompt.wav", speech_like(2.0, sr=24000), 24000)
    assert main(["continue", str(tmp_path / "prompt.wav"), "-o", str(tmp_path / "out.wav"), "--model",
                 str(tmp_path / "m"), "--seconds", "6", "--seed", "0", "--speaker", "b", "--cache", "tova",
                 "--cache-size", "16"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "out.wav").exists()
