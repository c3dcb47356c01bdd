import json

import pytest
import torch
import torch.nn.functional as F

from speechkit.ulm import UnitLM, UnitLMError, UnitVocab
from tests.unit.ulm.conftest import save_tiny_lm, tiny_config

K = 40  # units


def _embedding_keys(model) -> set[str]:
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return {k for k, v in model.state_dict().items() if v.data_ptr() in (emb.data_ptr(), head.data_ptr())}


def test_warm_start_keeps_every_transformer_weight_bit_for_bit(text_lm):
    from transformers import AutoModelForCausalLM

    arch, folder = text_lm
    text = AutoModelForCausalLM.from_pretrained(folder)
    lm = UnitLM.warm_start(folder, num_units=K)
    text_sd, unit_sd = text.state_dict(), lm.model.state_dict()
    replaced = _embedding_keys(lm.model)
    assert replaced and replaced == _embedding_keys(text)
    assert set(text_sd) == set(unit_sd)
    kept = [k for k in text_sd if k not in replaced]
    assert len(kept) > 10
    for k in kept:
        assert torch.equal(text_sd[k], unit_sd[k]), k
    if arch == "opt":
        assert any("project_in" in k for k in kept) and any("embed_positions" in k for k in kept)
    assert lm.model.get_input_embeddings().weight.shape[0] == K + 2
    assert lm.model.config.vocab_size == K + 2
    tied = lm.model.get_output_embeddings().weight is lm.model.get_input_embeddings().weight
    assert tied == (arch != "llama")  # ties exactly where the text LM ties
    assert (lm.model.config.pad_token_id, lm.model.config.bos_token_id, lm.model.config.eos_token_id) == (0, 1, 1)


def test_warm_start_embedding_init_is_documented_and_seeded(tmp_path):
    from transformers import AutoModelForCausalLM

    save_tiny_lm(tmp_path, "llama", vocab_size=600)
    text = AutoModelForCausalLM.from_pretrained(tmp_path)
    old_in, old_out = text.get_input_embeddings().weight.detach(), text.get_output_embeddings().weight.detach()

    lm = UnitLM.warm_start(tmp_path, num_units=500, seed=3)
    new_in = lm.model.get_input_embeddings().weight.detach()
    assert torch.allclose(new_in.mean(0), old_in.mean(0), atol=float(4 * old_in.std(0).max() / 500 ** 0.5))
    assert torch.allclose(new_in.std(0), old_in.std(0), rtol=0.2)
    assert not torch.equal(new_in[:10], old_in[:10])
    again = UnitLM.warm_start(tmp_path, num_units=500, seed=3)
    assert torch.equal(again.model.get_input_embeddings().weight, new_in)
    other = UnitLM.warm_start(tmp_path, num_units=500, seed=4)
    assert not torch.equal(other.model.get_input_embeddings().weight, new_in)

    rows = UnitLM.warm_start(tmp_path, num_units=500, embedding_init="text_rows")
    assert torch.equal(rows.model.get_input_embeddings().weight, old_in[:502])
    assert torch.equal(rows.model.get_output_embeddings().weight, old_out[:502])
    with pytest.raises(UnitLMError, match="embedding_init must be one of"):
        UnitLM.warm_start(tmp_path, num_units=5, embedding_init="zeros")


def test_cold_start_same_architecture_random_weights_seeded(text_lm):
    arch, folder = text_lm
    warm = UnitLM.warm_start(folder, num_units=K)
    state = torch.get_rng_state()
    cold = UnitLM.cold_start(folder, num_units=K, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    w, c = warm.model.state_dict(), cold.model.state_dict()
    assert {k: v.shape for k, v in w.items()} == {k: v.shape for k, v in c.items()}
    assert type(warm.model) is type(cold.model)
    attn = next(k for k in w if "q_proj.weight" in k)
    assert not torch.equal(w[attn], c[attn])
    again = UnitLM.cold_start(tiny_config(arch), num_units=K, seed=1)
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in c.items())
    assert cold.info["init"] == "cold" and warm.info["init"] == "warm"


def test_token_ids_layout():
    vocab = UnitVocab.speechkit(10)
    assert vocab.token_ids([0, 9, 3]) == [1, 2, 11, 5, 1]
    assert vocab.token_ids(torch.tensor([4])) == [1, 6, 1]
    assert vocab.token_ids([4], append_eos=False) == [1, 6]
    twist = UnitVocab(num_units=10, unit_offset=4, bos_id=None, eos_id=2, layout="twist", append_eos=False)
    assert twist.token_ids([0, 9]) == [4, 13]
    with pytest.raises(UnitLMError, match="collides"):
        UnitVocab(num_units=10, unit_offset=1, bos_id=3).validate()


def _reference_log_likelihood(lm, units, reduction):
    """Independent recomputation: one sequence, no padding, cross-entropy of lm.model's logits."""
    ids = torch.tensor([lm.token_ids(units)])
    with torch.no_grad():
        logits = lm.model(ids).logits[0].float()
    nll = F.cross_entropy(logits[:-1], ids[0, 1:], reduction="sum")
    n = ids.shape[1] - 1
    return float(-nll / n) if reduction == "mean" else float(-nll)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_log_likelihood_matches_independent_recomputation_and_ignores_batching(text_lm, reduction):
    _, folder = text_lm
    lm = UnitLM.warm_start(folder, num_units=K)
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, K, (n,), generator=g).tolist() for n in (1, 7, 30, 12, 3)]
    expected = torch.tensor([_reference_log_likelihood(lm, s, reduction) for s in seqs])
    for batch_size in (1, 2, 32):
        got = lm.log_likelihood(seqs, reduction=reduction, batch_size=batch_size)
        assert got.shape == (5,) and got.dtype == torch.float32
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-5), (batch_size, got, expected)
    as_tensor = lm.log_likelihood(torch.tensor([seqs[1][:3], seqs[2][:3]]), reduction=reduction)
    assert torch.allclose(as_tensor, lm.log_likelihood([seqs[1][:3], seqs[2][:3]], reduction=reduction))


def test_log_likelihood_rejects_bad_input(tmp_path):
    save_tiny_lm(tmp_path, "llama")
    lm = UnitLM.warm_start(tmp_path, num_units=K)
    with pytest.raises(UnitLMError, match=r"seqs\[1\]\[2\] = 40 is out of range: unit ids must be in \[0, 40\)"):
        lm.log_likelihood([[1, 2], [3, 4, 40]])
    with pytest.raises(UnitLMError, match=r"seqs\[0\]\[0\] = -1 is out of range"):
        lm.log_likelihood([[-1]])
    with pytest.raises(UnitLMError, match=r"seqs\[1\] is empty"):
        lm.log_likelihood([[1], []])
    with pytest.raises(UnitLMError, match="pass a list of sequences"):
        lm.log_likelihood([1, 2, 3])
    with pytest.raises(UnitLMError, match=r"seqs\[0\]\[0\] = 1.5: unit ids must be integers"):
        lm.log_likelihood([[1.5]])
    with pytest.raises(UnitLMError, match="reduction must be 'mean' or 'sum'"):
        lm.log_likelihood([[1]], reduction="max")
    with pytest.raises(UnitLMError, match="exceed the model's context of 128"):
        lm.log_likelihood([[1] * 127])


def test_generate_is_seeded_and_returns_only_unit_ids(text_lm):
    _, folder = text_lm
    lm = UnitLM.warm_start(folder, num_units=K)
    a = lm.generate([3, 4, 5], max_new_tokens=40, temperature=1.0, seed=7, stop_on_eos=False)
    b = lm.generate([3, 4, 5], max_new_tokens=40, temperature=1.0, seed=7, stop_on_eos=False)
    c = lm.generate([3, 4, 5], max_new_tokens=40, temperature=1.0, seed=8, stop_on_eos=False)
    assert a.dtype == torch.long and a.shape == (40,)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) < K
    for kwargs in ({"top_k": 3}, {"top_p": 0.5}, {"temperature": 0.0}):
        out = lm.generate([1], max_new_tokens=15, seed=0, **kwargs)
        assert len(out) <= 15 and all(0 <= u < K for u in out.tolist())
    unconditional = lm.generate([], max_new_tokens=5, seed=0, stop_on_eos=False)
    assert unconditional.shape == (5,)


def _greedy_without_cache(lm, prompt, n):
    ids = lm.token_ids(prompt)[:-1]
    out = []
    for _ in range(n):
        with torch.no_grad():
            logits = lm.model(torch.tensor([ids])).logits[0, -1]
        units = logits[lm.vocab.unit_offset:lm.vocab.unit_offset + K]
        u = int(units.argmax())
        out.append(u)
        ids.append(u + lm.vocab.unit_offset)
    return out


def test_greedy_generate_with_kv_cache_equals_full_recomputation(text_lm):
    _, folder = text_lm
    lm = UnitLM.warm_start(folder, num_units=K)
    got = lm.generate([5, 6, 7, 8], max_new_tokens=12, temperature=0, stop_on_eos=False)
    assert got.tolist() == _greedy_without_cache(lm, [5, 6, 7, 8], 12)
    top1 = lm.generate([5, 6, 7, 8], max_new_tokens=12, top_k=1, seed=3, stop_on_eos=False)
    assert torch.equal(top1, got)


def test_generate_stops_at_eos_and_never_returns_it(tmp_path):
    save_tiny_lm(tmp_path, "llama")
    lm = UnitLM.warm_start(tmp_path, num_units=K)
    calls = []

    def push_eos(module, args, output):  # from the 4th step on, EOS is by far the most likely token
        calls.append(1)
        if len(calls) >= 4:
            output[..., 1] += 1e4
        return output

    handle = lm.model.lm_head.register_forward_hook(push_eos)
    try:
        out = lm.generate([2], max_new_tokens=20, temperature=1.0, seed=0)
        assert out.shape == (3,)
        calls.clear()
        ignored = lm.generate([2], max_new_tokens=20, temperature=1.0, seed=0, stop_on_eos=False)
        assert ignored.shape == (20,) and int(ignored.max()) < K
    finally:
        handle.remove()


def test_filter_logits_top_k_and_top_p():
    from speechkit.ulm.generate import filter_logits

    logits = torch.log(torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [False, False, True, True, True]
    assert torch.isinf(filter_logits(logits, top_p=0.6)).tolist() == [False, False, True, True, True]
    assert torch.isinf(filter_logits(logits, top_p=0.5)).tolist() == [False, True, True, True, True]
    assert torch.isinf(filter_logits(logits, top_p=0.01)).tolist() == [False, True, True, True, True]
    assert not torch.isinf(filter_logits(logits, top_p=1.0)).any()


def test_generate_rejects_bad_arguments(tmp_path):
    save_tiny_lm(tmp_path, "llama")
    lm = UnitLM.warm_start(tmp_path, num_units=K)
    with pytest.raises(UnitLMError, match=r"prompt_units\[0\] = 99 is out of range"):
        lm.generate([99])
    with pytest.raises(UnitLMError, match="temperature must be >= 0"):
        lm.generate([1], temperature=-1)
    with pytest.raises(UnitLMError, match="top_p must be None or in"):
        lm.generate([1], top_p=1.5)
    with pytest.raises(UnitLMError, match="top_k must be None or an integer >= 1"):
        lm.generate([1], top_k=0)
    with pytest.raises(UnitLMError, match="exceed the model's context"):
        lm.generate([1] * 100, max_new_tokens=100)


def test_save_pretrained_round_trip(text_lm, tmp_path):
    from transformers import AutoModelForCausalLM

    _, folder = text_lm
    lm = UnitLM.warm_start(folder, num_units=K, seed=5)
    out = lm.save_pretrained(tmp_path / "ulm")
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    meta = json.loads((out / "unit_lm.json").read_text())
    assert meta["vocab"]["num_units"] == K and meta["info"]["init"] == "warm"
    back = UnitLM.from_pretrained(out)
    assert back.vocab == lm.vocab and back.info == lm.info
    sd = lm.model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in back.model.state_dict().items())
    tied = lm.model.get_output_embeddings().weight is lm.model.get_input_embeddings().weight
    assert (back.model.get_output_embeddings().weight is back.model.get_input_embeddings().weight) == tied
    seqs = [[1, 2, 3], [4, 5]]
    assert torch.equal(back.log_likelihood(seqs), lm.log_likelihood(seqs))
    plain = AutoModelForCausalLM.from_pretrained(out)  # loadable by transformers alone
    assert plain.config.vocab_size == K + 2


def test_folders_that_are_not_unit_lms_get_clear_errors(tmp_path):
    from transformers import BertConfig, BertModel

    save_tiny_lm(tmp_path / "text", "gpt2")
    with pytest.raises(UnitLMError, match=r"text: a causal LM without unit metadata.*UnitLM.warm_start"):
        UnitLM.from_pretrained(tmp_path / "text")
    BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path / "bert")
    with pytest.raises(UnitLMError, match=r"bert: not a causal language model: architectures \['BertModel'\]"):
        UnitLM.warm_start(tmp_path / "bert", num_units=K)
    (tmp_path / "hubert").mkdir()
    (tmp_path / "hubert" / "config.json").write_text('{"model_type": "hubert"}')
    with pytest.raises(UnitLMError, match=r"hubert: not a causal language model: model_type 'hubert'"):
        UnitLM.cold_start(tmp_path / "hubert", num_units=K)
    with pytest.raises(UnitLMError, match=r"nowhere: not a directory"):
        UnitLM.warm_start(tmp_path / "nowhere", num_units=K)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnitLMError, match=r"empty: no config.json"):
        UnitLM.from_pretrained(tmp_path / "empty")
    with pytest.raises(UnitLMError, match="num_units must be >= 1"):
        UnitLM.warm_start(tmp_path / "text", num_units=0)
