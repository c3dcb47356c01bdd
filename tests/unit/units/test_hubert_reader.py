import pytest
import torch
import torch.nn.functional as F

from speechkit.train.checkpoint import CheckpointError
from speechkit.units.hubert import HubertConfig, HubertFeatureReader, build_hubert, save_hubert
from speechkit.units.hubert.interop import fold_weight_norm, parse_conv_layers
from speechkit.utils.safe_pickle import UnsafePickleError
from tests.unit.units import fairseq_format as ff


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    for v in ff.VARIANTS:
        ff.write_fairseq_checkpoint(d / f"{v}.pt", v, seed=11)
    return d


def test_parse_conv_layers_never_evaluates_code():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")[-1] == (512, 2, 2)
    assert len(parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")) == 7
    assert parse_conv_layers("2 * [(8, 3, 1)]") == [(8, 3, 1), (8, 3, 1)]
    for bad in ("__import__('os').system('echo pwned')", "[(1,2,3)] + x", "[(1, 2)]", "[(1.5, 2, 3)]"):
        with pytest.raises(ValueError, match="conv_feature_layers"):
            parse_conv_layers(bad)


def test_fold_weight_norm_matches_torch_weight_norm():
    conv = torch.nn.Conv1d(8, 8, 5, groups=2)
    wn = torch.nn.utils.weight_norm(conv, name="weight", dim=2)
    wn.weight_g.data.uniform_(0.5, 2.0)
    expected = torch._weight_norm(wn.weight_v, wn.weight_g, 2)
    assert torch.allclose(fold_weight_norm(wn.weight_g, wn.weight_v), expected, atol=1e-6)


def test_long_audio_is_normalised_whole_then_cut_in_chunks(checkpoints):
    reader = HubertFeatureReader.from_pretrained(checkpoints / "large.pt", layer=2, max_chunk=8000)
    wav = torch.randn(20000) * 0.1 + 0.05
    whole = F.layer_norm(wav, wav.shape)
    pieces = [whole[i : i + 8000] for i in range(0, 20000, 8000)]
    with torch.inference_mode():
        expected = torch.cat([reader.model(p[None], output_layer=2)[0][0] for p in pieces])
    assert torch.allclose(reader(wav), expected, atol=1e-5)
    # and this differs from normalising each chunk on its own
    with torch.inference_mode():
        per_chunk = torch.cat([reader.model(F.layer_norm(p, p.shape)[None], output_layer=2)[0][0]
                               for p in (wav[i : i + 8000] for i in range(0, 20000, 8000))])
    assert (reader(wav) - per_chunk).abs().max() > 1e-3


@pytest.mark.parametrize("variant", ["base", "large", "25hz"])
def test_padded_batch_equals_one_at_a_time(checkpoints, variant):
    reader = HubertFeatureReader.from_pretrained(checkpoints / f"{variant}.pt", layer=3)
    g = torch.Generator().manual_seed(0)
    wavs = [torch.randn(n, generator=g) * 0.2 for n in (16000, 9137, 23456, 4000)]
    batched = reader.forward_batch(wavs)
    for w, b in zip(wavs, batched, strict=True):
        single = reader(w)
        assert b.shape == single.shape
        assert (b - single).abs().max() <= 1e-4


def test_bad_inputs_and_layers(checkpoints):
    reader = HubertFeatureReader.from_pretrained(checkpoints / "base.pt", layer=1)
    with pytest.raises(ValueError, match="too short: 300 samples"):
        reader(torch.zeros(300))
    with pytest.raises(ValueError, match="NaN"):
        reader(torch.full((4000,), float("nan")))
    with pytest.raises(ValueError, match="1-D"):
        reader(torch.zeros(2, 4000))
    with pytest.raises(ValueError, match=r"base\.pt: layer must be between 1 and 3 for this model. Found 4"):
        HubertFeatureReader.from_pretrained(checkpoints / "base.pt", layer=4)


class Evil:
    def __reduce__(self):
        return (exec, ("import os; open('/tmp/speechkit_pwned', 'w').write('x')",))


def test_malicious_pickle_is_refused_not_executed(tmp_path):
    import os

    state = {"cfg": ff.fairseq_cfg("base"), "model": ff.fairseq_state_dict("base"), "task_state": Evil()}
    torch.save(state, tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError, match=r"evil\.pt: refusing to unpickle exec "):
        HubertFeatureReader.from_pretrained(tmp_path / "evil.pt", layer=1)
    assert not os.path.exists("/tmp/speechkit_pwned")


def test_wrong_checkpoints_get_clear_errors(tmp_path, checkpoints):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: not a fairseq checkpoint"):
        HubertFeatureReader.from_pretrained(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(UnsafePickleError, match=r"text\.pt: not a readable torch checkpoint"):
        HubertFeatureReader.from_pretrained(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        HubertFeatureReader.from_pretrained(tmp_path / "missing.pt")
    sd = ff.fairseq_state_dict("base")
    sd["encoder.layers.0.fc1.weight"] = torch.zeros(5, 5)
    ff.write_fairseq_checkpoint(tmp_path / "bad_shape.pt", "base", sd=sd)
    with pytest.raises(CheckpointError, match=r"bad_shape\.pt: encoder\.layers\.0\.fc1\.weight has shape \(5, 5\)"):
        HubertFeatureReader.from_pretrained(tmp_path / "bad_shape.pt")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="model_type must be 'hubert' or 'wav2vec2'. Found 'bert'"):
        HubertFeatureReader.from_pretrained(tmp_path / "hf")


def test_our_format_roundtrip(tmp_path):
    cfg = HubertConfig(conv_layers=[(16, 10, 5), (16, 3, 2), (16, 2, 2)], embed_dim=32, num_layers=2, num_heads=4,
                       ffn_dim=48, conv_pos=8, conv_pos_groups=4)
    model = build_hubert(cfg).eval()
    save_hubert(tmp_path / "m", model, cfg)
    reader = HubertFeatureReader.from_pretrained(tmp_path / "m", layer=2)
    wav = torch.randn(8000)
    with torch.inference_mode():
        expected = model(wav[None], output_layer=2)[0][0]
    assert torch.allclose(reader(wav), expected, atol=1e-6)
    assert reader.code_hop_size == 20 and reader.dim == 32 and reader.expected_sample_rate == 16000


@pytest.mark.parametrize("variant", ["base", "large", "25hz"])
def test_export_to_fairseq_names_roundtrips(tmp_path, variant):
    from speechkit.units.hubert.interop import to_fairseq_state_dict
    from speechkit.units.hubert.model import HubertModel

    original = ff.fairseq_state_dict(variant, seed=3)
    ff.write_fairseq_checkpoint(tmp_path / "a.pt", variant, sd=original)
    model = HubertModel.from_pretrained(tmp_path / "a.pt")
    cfg = model.config
    exported = to_fairseq_state_dict(model.state_dict(), cfg)
    heads = {k for k in original if k.startswith(("label_embs", "final_proj"))}
    assert set(exported) == set(original) - heads
    for k, v in exported.items():
        if k.endswith(("weight_g", "weight_v")):
            continue  # weight norm is re-parametrised; the folded weight is what must agree
        assert torch.allclose(v, original[k], atol=1e-6), k
    ff.write_fairseq_checkpoint(tmp_path / "b.pt", variant, sd=exported)
    wav = torch.randn(9000)
    a = HubertFeatureReader.from_pretrained(tmp_path / "a.pt", layer=3)(wav)
    assert torch.allclose(a, HubertFeatureReader.from_pretrained(tmp_path / "b.pt", layer=3)(wav), atol=1e-5)
