"""GenPPL (speechkit.metrics.genppl and the `genppl` metric of `eval folder`): a transcript gets exactly the
perplexity the text LM gives it, computed here from the model's logits by hand."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from speechkit.metrics.genppl import TextLMError, TextLMScorer, aggregate_genppl, write_text_lm_info

SAMPLES = Path(__file__).resolve().parents[3] / "checkpoints" / "default" / "samples"
DOCS = ["bring the red box to the kitchen", "she looked under the sofa and behind the door",
        "the engine ran quietly all the way", "please close the window before you leave"] * 5


@pytest.fixture(scope="module")
def text_lm(tmp_path_factory):
    """A tiny random Llama text LM with a byte-level BPE, saved as a speechkit text-LM folder (normalize=asr)."""
    from speechkit.train.textlm import TextModelConfig, build_text_lm, train_tokenizer

    folder = tmp_path_factory.mktemp("textlm")
    tok = train_tokenizer(DOCS, vocab_size=300)
    model = build_text_lm(TextModelConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=256), len(tok), seed=3)
    model.save_pretrained(str(folder), safe_serialization=True)
    tok.save_pretrained(str(folder))
    write_text_lm_info(folder, "asr")
    return folder


def _by_hand(folder: Path, text: str, context: str | None = None) -> tuple[float, int]:
    """Summed NLL of ``text``'s tokens after BOS (+ context), straight from the model's logits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder).eval()
    head = tok(context, add_special_tokens=False)["input_ids"] if context else []
    body = tok((" " + text) if context else text, add_special_tokens=False)["input_ids"]
    ids = [tok.bos_token_id, *head, *body]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    nll = -sum(logp[i - 1, ids[i]].item() for i in range(1 + len(head), len(ids)))
    return nll, len(body)


def test_known_transcript_gets_the_text_lms_own_perplexity(text_lm):
    scorer = TextLMScorer.from_pretrained(text_lm)
    assert scorer.normalize == "asr"  # read from text_lm.json
    texts = ["Bring the red box, to the KITCHEN!", "the engine ran", "", "   "]
    got = scorer.nll(texts)
    nll, n = _by_hand(text_lm, "bring the red box to the kitchen")  # normalised as the LM was trained
    assert got[0][1] == n and got[0][0] == pytest.approx(nll, rel=1e-5)
    assert scorer.genppl(texts)[0] == pytest.approx(math.exp(nll / n), rel=1e-5)
    nll1, n1 = _by_hand(text_lm, "the engine ran")
    assert got[1] == (pytest.approx(nll1, rel=1e-5), n1)
    assert math.isnan(got[2][0]) and got[2][1] == 0 and got[3][1] == 0  # no words: no perplexity
    # the prompt's transcript conditions the continuation, and only the continuation is scored
    ctx = scorer.nll(["to the kitchen"], ["Bring the red box"])[0]
    nll_c, n_c = _by_hand(text_lm, "to the kitchen", context="bring the red box")
    assert ctx[1] == n_c and ctx[0] == pytest.approx(nll_c, rel=1e-5)
    assert ctx[0] != pytest.approx(_by_hand(text_lm, "to the kitchen")[0], rel=1e-3)
    # batching does not change a score
    one_by_one = [TextLMScorer.from_pretrained(text_lm, batch_size=1).nll([t])[0][0] for t in texts[:2]]
    assert one_by_one == pytest.approx([got[0][0], got[1][0]], rel=1e-5)
    # without normalisation the raw text is what gets scored
    raw = TextLMScorer.from_pretrained(text_lm, normalize="none").nll(["Bring the red box"])[0]
    assert raw == (pytest.approx(_by_hand(text_lm, "Bring the red box")[0], rel=1e-5), raw[1])
    assert aggregate_genppl([math.log(4.0), math.nan, math.log(16.0)]) == pytest.approx(8.0)
    assert math.isnan(aggregate_genppl([math.nan]))


def test_genppl_metric_of_eval_folder_scores_the_pocketsphinx_transcript(text_lm, tmp_path):
    from speechkit.audio import io
    from speechkit.metrics.asr import PocketSphinxASR
    from speechkit.metrics.folder import FolderEvalConfig, evaluate_folder

    wavs = sorted(SAMPLES.glob("*.wav"))[:2]
    for w in wavs:
        shutil.copy(w, tmp_path / w.name)
    io.save(tmp_path / "silence.wav", torch.zeros(16000), 16000)  # pocketsphinx hears 'dog' here; VAD nothing
    (tmp_path / "prompts.tsv").write_text("".join(f"{w.stem}\tthe story goes on\n" for w in wavs)
                                          + "silence\tnothing\n")
    cfg = FolderEvalConfig(metrics=("genppl", "vad"), text_lm=str(text_lm), media=False)
    report = evaluate_folder(tmp_path, config=cfg, out=tmp_path / "report")
    rows = {r["id"]: r for r in report["per_file"]}
    asr = PocketSphinxASR()
    nlls = []
    for w in wavs:
        words = asr.transcribe_file(w)
        assert words and rows[w.stem]["asr"] == words
        nll, n = _by_hand(text_lm, words)
        assert rows[w.stem]["genppl_tokens"] == n
        assert rows[w.stem]["genppl"] == pytest.approx(math.exp(nll / n), rel=1e-4)
        nlls.append(nll / n)
        assert rows[w.stem]["has_speech"] == 1.0 and rows[w.stem]["speech_seconds"] > 0.5
    assert rows["silence"]["has_speech"] == 0.0 and rows["silence"]["speech_seconds"] == 0.0
    silence = rows["silence"]["genppl_nll"] if rows["silence"]["genppl_tokens"] else math.nan
    expect = [*nlls, silence] if not math.isnan(silence) else nlls
    assert report["summary"]["genppl"] == pytest.approx(math.exp(sum(expect) / len(expect)), rel=1e-4)
    assert report["summary"]["asr_nonempty"] == pytest.approx((2 + bool(rows["silence"]["genppl_tokens"])) / 3)
    assert report["summary"]["has_speech"] == pytest.approx(2 / 3)
    assert "genppl" in (tmp_path / "report" / "report.html").read_text()

    with_prompts = evaluate_folder(tmp_path, config=cfg, prompts=tmp_path / "prompts.tsv")
    row = next(r for r in with_prompts["per_file"] if r["id"] == wavs[0].stem)
    nll, n = _by_hand(text_lm, row["asr"], context="the story goes on")
    assert row["prompt"] == "the story goes on" and row["genppl"] == pytest.approx(math.exp(nll / n), rel=1e-4)


def test_genppl_errors_name_the_problem(text_lm, tmp_path):
    from speechkit.metrics.folder import EvalError, FolderEvalConfig, evaluate_folder

    shutil.copy(sorted(SAMPLES.glob("*.wav"))[0], tmp_path / "a.wav")
    with pytest.raises(EvalError, match="--text-lm: text LM .*nowhere: no such folder"):
        evaluate_folder(tmp_path, config=FolderEvalConfig(metrics=("genppl",), text_lm=str(tmp_path / "nowhere")))
    (tmp_path / "empty_lm").mkdir()
    with pytest.raises(TextLMError, match="empty_lm: no config.json"):
        TextLMScorer.from_pretrained(tmp_path / "empty_lm")
    (tmp_path / "bad_lm").mkdir()
    (tmp_path / "bad_lm" / "config.json").write_text("{not json")
    with pytest.raises(TextLMError, match="bad_lm"):
        TextLMScorer.from_pretrained(tmp_path / "bad_lm")
    with pytest.raises(EvalError, match="add genppl to the metrics"):
        (tmp_path / "p.tsv").write_text("a\tx\n")
        evaluate_folder(tmp_path, transcripts=tmp_path / "p.tsv", prompts=tmp_path / "p.tsv")
    (tmp_path / "p.tsv").write_text("b\tx\n")
    with pytest.raises(EvalError, match="no match in --prompts"):
        evaluate_folder(tmp_path, config=FolderEvalConfig(metrics=("genppl",), text_lm=str(text_lm)),
                        prompts=tmp_path / "p.tsv")
    with pytest.raises(TextLMError, match="more than the LM's context of 256"):
        TextLMScorer.from_pretrained(text_lm).nll(["the kitchen " * 200])


def test_asr_ranker_keeps_the_candidate_with_the_lowest_genppl(text_lm):
    from speechkit.ulm import UnitLM
    from speechkit.ulm.best_of import ASRRanker, best_of_k
    from tests.unit.ulm.conftest import tiny_config

    texts = {3: "the engine ran quietly all the way", 4: "way the all quietly", 5: "", 6: "Bring the red box!"}

    class FakeASR:  # "transcribes" a wav by its length
        sample_rate = 16000

        def transcribe(self, wav):
            return texts[len(wav)]

    scorer = TextLMScorer.from_pretrained(text_lm)
    ranker = ASRRanker(FakeASR(), scorer)
    audio = [torch.zeros(n) for n in (3, 4, 5, 6)]
    scores = ranker(torch.tensor([1]), [torch.tensor([0])] * 4, audio)
    ppl = scorer.genppl([texts[n] for n in (3, 4, 5, 6)])
    assert scores[2] == float("-inf")  # no words: never preferred
    for i in (0, 1, 3):
        assert scores[i].item() == pytest.approx(-math.log(ppl[i]), rel=1e-5)
    assert ranker.flops(1, audio) == pytest.approx(scorer.flops(ranker.transcripts)) and ranker.flops(1, audio) > 0

    lm = UnitLM.cold_start(tiny_config("llama", max_position_embeddings=64), num_units=8, seed=0)
    res = best_of_k(lm, torch.tensor([1, 2]), 4, 4, ranker, audio_fn=lambda u: torch.zeros(3 + int(u.sum()) % 4))
    chosen = [texts[3 + int(torch.cat([torch.tensor([1, 2]), c]).sum()) % 4] for c in res.candidates]
    words = [i for i, t in enumerate(chosen) if t]
    assert chosen[res.index] and res.index == min(words, key=lambda i: (scorer.genppl([chosen[i]])[0], i))


def test_a_bad_text_lm_note_is_named(text_lm, tmp_path):
    folder = tmp_path / "lm"
    shutil.copytree(text_lm, folder)
    (folder / "text_lm.json").write_text('{"normalize": "shout"}')
    with pytest.raises(TextLMError, match=r"lm/text_lm\.json: normalize must be one of"):
        TextLMScorer.from_pretrained(folder)
    (folder / "text_lm.json").write_text("[1, 2]")
    with pytest.raises(TextLMError, match=r"text_lm\.json"):
        TextLMScorer.from_pretrained(folder)
