"""Released unit-LM layouts, each proven on a small model saved in that layout.

- TWIST (textlesslib examples/twist): an HF causal LM folder whose config carries ``offset``; textlesslib feeds
  ``offset + units`` to ``model.generate`` and subtracts the offset from the result.
- slamkit: ``UnitLM(PreTrainedModel)`` wrapping the LM as ``self.lm`` with ``UnitLMConfig(model_type=
  "speech_language_model", base_config=..., vocab_size=...)``, saved by transformers' ``save_pretrained``; its
  ``UnitTokeniser`` is a ``tokenizers`` WordLevel model over ``<Un{u}>`` strings with template ``<S> $0 <S>``.
  The stand-ins below are written from that description (not copied), and saved by transformers itself.
"""

import json

import pytest
import torch
import torch.nn.functional as F

from speechkit.ulm import UnitLM, UnitLMError
from speechkit.ulm.interop import detect_format, load_twist
from tests.unit.ulm.conftest import tiny_config


# ------------------------------------------------------------------------------------------------ TWIST
def _save_twist(folder, arch: str, offset: int = 4, num_units: int = 50):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = tiny_config(arch, vocab_size=offset + num_units)
    cfg.offset = offset  # where TWIST releases keep the unit offset
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(folder)
    return model


@pytest.mark.parametrize("arch", ["opt", "llama"])  # TWIST-350M/1.3B are OPT, TWIST-7B is LLaMA
def test_twist_release_layout(tmp_path, arch):
    from transformers import AutoModelForCausalLM

    _save_twist(tmp_path, arch)
    assert detect_format(tmp_path) == "twist"
    lm = UnitLM.from_pretrained(tmp_path)
    assert lm.vocab.layout == "twist" and lm.num_units == 50 and lm.vocab.bos_id is None
    units = [0, 7, 49, 3, 3, 12]
    assert lm.token_ids(units) == [u + 4 for u in units]  # offset + units, no BOS, no EOS

    # scoring = log-prob of every token after the first, exactly as the raw model gives it
    ref = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.tensor([units]) + ref.config.offset
    with torch.no_grad():
        logp = ref(ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    assert torch.allclose(lm.log_likelihood([units], reduction="sum"), logp.sum()[None], atol=1e-5)
    assert torch.allclose(lm.log_likelihood([units], reduction="mean"), logp.mean()[None], atol=1e-6)

    # generation = textlesslib's generate_with_offset (greedy here), restricted to unit tokens
    blocked = [i for i in range(ref.config.vocab_size) if not 4 <= i < 54 and i != ref.config.eos_token_id]
    with torch.no_grad():
        hf = ref.generate(ids, max_new_tokens=10, do_sample=False, suppress_tokens=blocked,
                          eos_token_id=ref.config.eos_token_id, pad_token_id=0)
    hf_units = (hf[0, ids.shape[1]:] - ref.config.offset).tolist()
    eos = ref.config.eos_token_id - ref.config.offset
    if eos in hf_units:
        hf_units = hf_units[:hf_units.index(eos)]
    ours = lm.generate(units, max_new_tokens=10, temperature=0)
    assert ours.tolist() == hf_units


def test_twist_offset_override_and_errors(tmp_path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("opt", vocab_size=60)).save_pretrained(tmp_path)
    with pytest.raises(UnitLMError, match="no 'offset' key"):
        load_twist(tmp_path)
    model, vocab = load_twist(tmp_path, offset=4, num_units=50)
    assert vocab.unit_offset == 4 and vocab.num_units == 50
    with pytest.raises(UnitLMError, match="exceeds vocab_size 60"):
        load_twist(tmp_path, offset=20, num_units=50)


def test_twist_model_saved_by_speechkit_keeps_its_layout(tmp_path):
    _save_twist(tmp_path / "twist", "opt")
    lm = UnitLM.from_pretrained(tmp_path / "twist")
    lm.save_pretrained(tmp_path / "ours")
    back = UnitLM.from_pretrained(tmp_path / "ours")
    assert back.vocab == lm.vocab and back.token_ids([1, 2]) == [5, 6]
    assert torch.equal(back.log_likelihood([[1, 2, 3]]), lm.log_likelihood([[1, 2, 3]]))


# ------------------------------------------------------------------------------------------------ slamkit
def _slamkit_classes():
    from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

    class SlamLikeConfig(PretrainedConfig):
        model_type = "speech_language_model"

        def __init__(self, base_config=None, vocab_size=502, twist_init=True, **kwargs):
            super().__init__(**kwargs)
            self.base_config = base_config
            self.vocab_size = vocab_size
            self.twist_init = twist_init
            if base_config is not None:
                self.tie_word_embeddings = base_config.tie_word_embeddings

    class SlamLikeUnitLM(PreTrainedModel):
        config_class = SlamLikeConfig
        base_model_prefix = "lm"

        def __init__(self, config):
            super().__init__(config)
            self.lm = AutoModelForCausalLM.from_config(config.base_config)
            self.lm.resize_token_embeddings(config.vocab_size)
            self.post_init()

        def _init_weights(self, module):
            pass

        def get_input_embeddings(self):
            return self.lm.get_input_embeddings()

        def get_output_embeddings(self):
            return self.lm.get_output_embeddings()

        def forward(self, input_ids):
            return self.lm(input_ids=input_ids)

    return SlamLikeConfig, SlamLikeUnitLM


def _slamkit_tokeniser(num_units: int):
    """The documented slamkit unit tokeniser: WordLevel over '<Un{u}>', pad 0, '<S>' 1 both ends."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Split
    from tokenizers.processors import TemplateProcessing

    vocab = {f"<Un{u}>": u + 2 for u in range(num_units)} | {"<PAD>": 0, "<S>": 1}
    tok = Tokenizer(WordLevel(vocab, unk_token="<UNK>"))
    tok.pre_tokenizer = Split(pattern=">", behavior="merged_with_previous")
    tok.post_processor = TemplateProcessing(single="<S> $0 <S>", special_tokens=[("<S>", 1)])
    return tok


@pytest.mark.parametrize("arch", ["qwen2", "opt", "llama"])  # Slam is Qwen2.5 (tied); TWIST-style OPT; untied
def test_slamkit_model_layout(tmp_path, arch):
    SlamLikeConfig, SlamLikeUnitLM = _slamkit_classes()
    base = tiny_config(arch, vocab_size=300, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    torch.manual_seed(0)
    slam = SlamLikeUnitLM(SlamLikeConfig(base_config=base, vocab_size=502)).eval()
    slam.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "speech_language_model" and saved["base_config"]["model_type"] == arch

    assert detect_format(tmp_path) == "slamkit"
    lm = UnitLM.from_pretrained(tmp_path)
    assert lm.vocab.layout == "slamkit" and lm.num_units == 500
    sd = slam.lm.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in lm.model.state_dict().items())

    units = [0, 499, 17, 17, 250]
    tokeniser = _slamkit_tokeniser(500)
    assert lm.token_ids(units) == tokeniser.encode("".join(f"<Un{u}>" for u in units)).ids
    assert lm.token_ids(units) == [1] + [u + 2 for u in units] + [1]

    # slamkit's score: mean cross-entropy over shifted tokens, final <S> included
    ids = torch.tensor([tokeniser.encode("".join(f"<Un{u}>" for u in units)).ids])
    with torch.no_grad():
        nll = F.cross_entropy(slam(ids).logits[0, :-1], ids[0, 1:])
    assert torch.allclose(lm.log_likelihood([units]), -nll[None], atol=1e-5)


def test_slamkit_folder_with_foreign_keys_is_refused(tmp_path):
    from safetensors.torch import save_file

    base = tiny_config("qwen2").to_dict()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "speech_language_model", "vocab_size": 502,
                                                      "base_config": base}))
    save_file({"model.embed_tokens.weight": torch.zeros(502, 32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(UnitLMError, match="slamkit weights are prefixed 'lm.'"):
        UnitLM.from_pretrained(tmp_path)
    save_file({"lm.model.embed_tokens.weight": torch.zeros(502, 32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(UnitLMError, match="weights do not match the qwen2 config: missing"):
        UnitLM.from_pretrained(tmp_path)
