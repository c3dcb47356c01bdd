import json
import math

import pytest
import torch

from speechkit.cli.train import compose
from speechkit.errors import SpeechkitError
from speechkit.synth.text import prepare_text_corpus
from speechkit.train.textlm import run
from speechkit.ulm import UnitLM


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return prepare_text_corpus(tmp_path_factory.mktemp("text"), stories=300, sentences=300, valid_fraction=0.05)


def test_text_lm_trains_and_is_a_warm_startable_hf_folder(corpus, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "textlm"
    overrides = ["preset=debug", f"data.train={corpus / 'train.txt'}", f"data.valid={corpus / 'valid.txt'}",
                 f"out={out}", "optim.max_steps=25", "optim.lr=1e-2", "train.valid_every=12"]
    assert run(compose("textlm", overrides)) == 0
    history = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    valid = [h["valid_loss"] for h in history if "valid_loss" in h]
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert valid[-1] < math.log(len(tok)) - 1.0, valid  # well below a uniform guess over the vocabulary
    text = "Anna went to the market on Monday."
    assert tok.decode(tok(text)["input_ids"]) == text and tok.bos_token_id == 1 and tok.eos_token_id == 2
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.vocab_size == len(tok) and model.config.model_type == "llama"
    lm = UnitLM.warm_start(out / "model", num_units=30)
    kept = {k: v for k, v in model.state_dict().items() if "embed_tokens" not in k and "lm_head" not in k}
    assert all(torch.equal(v, lm.model.state_dict()[k]) for k, v in kept.items())

    # resuming at the end changes nothing and keeps the tokenizer
    assert run(compose("textlm", overrides)) == 0
    assert AutoTokenizer.from_pretrained(out / "model").get_vocab() == tok.get_vocab()


def test_text_lm_config_errors(corpus, tmp_path):
    base = ["preset=debug", f"data.train={corpus / 'train.txt'}", f"out={tmp_path}"]
    with pytest.raises(SpeechkitError, match=r"train.block_size=256 exceeds model.max_position_embeddings=128"):
        run(compose("textlm", [*base, "train.block_size=256", "model.max_position_embeddings=128"]))
    with pytest.raises(SpeechkitError, match=r"model.vocab_size must be >= 259"):
        run(compose("textlm", [*base, "model.vocab_size=100"]))
    with pytest.raises(SpeechkitError, match=r"required value data.train is missing"):
        run(compose("textlm", ["preset=debug"]))


def test_text_storycloze_scores_whole_stories_like_the_spoken_benchmark(tmp_path, capsys):
    from speechkit.cli.main import main
    from speechkit.synth.storycloze import generate_stories
    from speechkit.train.textlm import TextModelConfig, build_text_lm, train_tokenizer
    from speechkit.ulm.pairwise import text_storycloze

    stories = generate_stories(6, split="test")
    rows = [{"context": list(s.context), "ending": s.ending, "ssc_ending": s.ssc_ending,
             "tsc_ending": stories[(i + 1) % 6].ending} for i, s in enumerate(stories)]
    (tmp_path / "stories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = train_tokenizer([s.text for s in generate_stories(200)], 400)
    model = build_text_lm(TextModelConfig(vocab_size=400, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64), len(tok))
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    result = text_storycloze(tmp_path / "lm", tmp_path / "stories.jsonl", reduction="sum")

    def ll(text):
        ids = torch.tensor([[1, *tok(text, add_special_tokens=False)["input_ids"], 2]])
        with torch.no_grad():
            return model(ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None]).sum()

    for name, key in (("sSC", "ssc_ending"), ("tSC", "tsc_ending")):
        wins = [float(ll(" ".join([*r["context"], r["ending"]])) > ll(" ".join([*r["context"], r[key]])))
                for r in rows]
        assert result[name] == pytest.approx(sum(wins) / 6)
    assert main(["eval", "storycloze-text", str(tmp_path / "stories.jsonl"), "--text-lm", str(tmp_path / "lm")]) == 0
    assert "text StoryCloze (6 stories" in capsys.readouterr().out
