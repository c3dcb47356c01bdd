"""HubertFeatureReader on fairseq-format checkpoints vs independent implementations.

base / large: torchaudio's wav2vec2_model with torchaudio's own fairseq key converter.
25 Hz (batch-norm positional conv, which torchaudio lacks): transformers' HubertModel.
Tolerance: max |diff| <= 1e-4.
"""

import pytest
import torch
import torch.nn.functional as F

from speechkit.units.hubert import HubertFeatureReader
from speechkit.units.hubert.interop import parse_conv_layers
from tests.unit.units import fairseq_format as ff


@pytest.fixture(scope="module")
def wav():
    g = torch.Generator().manual_seed(1)
    t = torch.arange(24000) / 16000
    return (0.3 * torch.sin(2 * torch.pi * 150 * t) + 0.05 * torch.randn(24000, generator=g)).float()


def torchaudio_reference(variant: str, sd: dict):
    from torchaudio.models import wav2vec2_model
    from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict

    v = ff.VARIANTS[variant]
    model = wav2vec2_model(
        extractor_mode="group_norm" if v["extractor_mode"] == "default" else "layer_norm",
        extractor_conv_layer_config=parse_conv_layers(v["conv"]), extractor_conv_bias=v["conv_bias"],
        encoder_embed_dim=ff.DIM, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=ff.CONV_POS,
        encoder_pos_conv_groups=ff.CONV_POS_GROUPS, encoder_num_layers=ff.LAYERS, encoder_num_heads=ff.HEADS,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=ff.FFN, encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0, encoder_layer_norm_first=v["layer_norm_first"], encoder_layer_drop=0.0,
        aux_num_out=None)
    converted = {k: w for k, w in _convert_state_dict(sd).items() if k != "label_embs_concat"}
    model.load_state_dict(converted, strict=True)
    return model.eval()


@pytest.mark.parametrize("variant", ["base", "large"])
@pytest.mark.parametrize("layer", [1, 2, 3])
def test_fairseq_checkpoint_matches_torchaudio(tmp_path, wav, variant, layer):
    sd = ff.write_fairseq_checkpoint(tmp_path / "hubert.pt", variant, seed=layer)
    reader = HubertFeatureReader.from_pretrained(tmp_path / "hubert.pt", layer=layer)
    ours = reader(wav)
    x = F.layer_norm(wav, wav.shape) if ff.VARIANTS[variant]["normalize"] else wav
    with torch.inference_mode():
        ref = torchaudio_reference(variant, sd).extract_features(x[None], num_layers=layer)[0][-1][0]
    assert ours.shape == ref.shape == (reader.config.num_frames(len(wav)), ff.DIM)
    assert (ours - ref).abs().max() <= 1e-4
    assert reader.config.normalize is ff.VARIANTS[variant]["normalize"]  # read from cfg["task"]


def hf_reference_from_fairseq(variant: str, sd: dict):
    """transformers HubertModel loaded with fairseq weights (key names mapped here, in the test)."""
    from transformers import HubertConfig, HubertModel

    v = ff.VARIANTS[variant]
    layers = parse_conv_layers(v["conv"])
    cfg = HubertConfig(
        hidden_size=ff.DIM, num_hidden_layers=ff.LAYERS, num_attention_heads=ff.HEADS, intermediate_size=ff.FFN,
        conv_dim=[c for c, _, _ in layers], conv_kernel=[k for _, k, _ in layers],
        conv_stride=[s for _, _, s in layers], conv_bias=v["conv_bias"],
        feat_extract_norm="group" if v["extractor_mode"] == "default" else "layer",
        do_stable_layer_norm=v["layer_norm_first"], num_conv_pos_embeddings=ff.CONV_POS,
        num_conv_pos_embedding_groups=ff.CONV_POS_GROUPS, conv_pos_batch_norm=v["conv_pos_batch_norm"],
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        layerdrop=0.0, apply_spec_augment=False)
    model = HubertModel(cfg).eval()
    hf = {}
    for k, w in sd.items():
        k2 = (k.replace("feature_extractor.conv_layers.0.2.", "feature_extractor.conv_layers.0.layer_norm.")
               .replace(".0.weight", ".conv.weight").replace(".0.bias", ".conv.bias"))
        if k.startswith("encoder.pos_conv.0."):
            k2 = k.replace("encoder.pos_conv.0.", "encoder.pos_conv_embed.batch_norm.")
        elif k.startswith("encoder.pos_conv.1."):
            k2 = k.replace("encoder.pos_conv.1.", "encoder.pos_conv_embed.conv.")
        elif k.startswith("encoder.layers."):
            k2 = (k.replace("self_attn_layer_norm", "layer_norm").replace("self_attn.", "attention.")
                   .replace("fc1", "feed_forward.intermediate_dense").replace("fc2", "feed_forward.output_dense"))
        elif k in ("layer_norm.weight", "layer_norm.bias"):
            k2 = "feature_projection." + k
        elif k.startswith("post_extract_proj."):
            k2 = k.replace("post_extract_proj.", "feature_projection.projection.")
        elif k == "mask_emb":
            k2 = "masked_spec_embed"
        elif k.startswith(("label_embs", "final_proj")):
            continue
        hf[k2] = w
    model.load_state_dict(hf, strict=True)
    return model


def test_fairseq_25hz_batch_norm_positional_conv_matches_transformers(tmp_path, wav):
    sd = ff.write_fairseq_checkpoint(tmp_path / "mhubert25.pt", "25hz", seed=5)
    reader = HubertFeatureReader.from_pretrained(tmp_path / "mhubert25.pt", layer=2)
    assert reader.code_hop_size == 640 and reader.frame_rate == 25.0
    ours = reader(wav)
    with torch.inference_mode():
        ref = hf_reference_from_fairseq("25hz", sd)(wav[None], output_hidden_states=True).hidden_states[2][0]
    assert ours.shape == ref.shape and (ours - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("pre_ln", [False, True])
def test_transformers_folder_matches_transformers_model(tmp_path, wav, pre_ln):
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(3)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                       conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                       feat_extract_norm="layer" if pre_ln else "group", do_stable_layer_norm=pre_ln,
                       conv_bias=pre_ln)
    model = HubertModel(cfg).eval()
    with torch.no_grad():  # make layer norms non-trivial so a wrong mapping shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf")
    with torch.inference_mode():
        hidden = model(wav[None], output_hidden_states=True).hidden_states
    for layer in (1, 2, 3):
        ours = HubertFeatureReader.from_pretrained(tmp_path / "hf", layer=layer)(wav)
        if pre_ln and layer == 3:
            # transformers applies the encoder's final layer norm to the last hidden state of pre-LN models;
            # fairseq's output_layer (and speechkit) return the raw layer output: they must differ here
            assert (ours - hidden[3][0]).abs().max() > 1e-2
            continue
        assert (ours - hidden[layer][0]).abs().max() <= 1e-4
