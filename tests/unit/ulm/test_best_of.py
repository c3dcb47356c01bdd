"""Compute-matched best-of-k (speechkit.ulm.best_of) and SpeechContinuation.best_of."""

from __future__ import annotations

import pytest
import torch

from speechkit.ulm import UnitLM
from speechkit.ulm.best_of import LikelihoodRanker, best_of_k, forward_flops, num_parameters
from tests.unit.ulm.conftest import tiny_config

K = 20


@pytest.fixture(scope="module")
def lm():
    return UnitLM.cold_start(tiny_config("llama", max_position_embeddings=256), num_units=K, seed=0)


def test_likelihood_ranker_is_the_continuations_mean_log_probability(lm):
    prompt = torch.tensor([3, 4, 5, 6])
    cands = [torch.tensor([1, 2, 3]), torch.tensor([7, 7, 7, 7, 7])]
    scores = LikelihoodRanker(lm)(prompt, cands)
    ids = lm.vocab.token_ids(torch.cat([prompt, cands[1]]), append_eos=False)
    with torch.no_grad():
        logp = lm.model(torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
    own = logp.gather(1, torch.tensor(ids[1:])[:, None])[:, 0][-5:].mean()  # only the 5 continuation tokens
    assert scores.shape == (2,) and scores[1].item() == pytest.approx(own.item(), abs=1e-5)


def test_best_of_k_picks_the_ranker_maximum_and_counts_flops(lm):
    prompt = torch.tensor([3, 4, 5])
    picks = []

    def oracle(p, cands):  # prefers the candidate with most unit-7 tokens
        picks.append(len(cands))
        return torch.tensor([float((c == 7).sum()) for c in cands])

    res = best_of_k(lm, prompt, 4, 12, oracle, seed=10)
    assert picks == [4] and len(res.candidates) == 4
    assert res.index == int(torch.argmax(res.scores)) and torch.equal(res.best, res.candidates[res.index])
    for i, c in enumerate(res.candidates):  # candidate i is the sample with seed + i
        assert torch.equal(c, lm.generate(prompt, max_new_tokens=12, temperature=0.8, seed=10 + i))
    n_params = num_parameters(lm.model)
    expect = sum(2.0 * n_params * (len(prompt) + 1 + len(c)) for c in res.candidates)  # + BOS
    assert res.flops["generate"] == pytest.approx(expect) and res.flops["rank"] == 0
    own = best_of_k(lm, prompt, 3, 12, LikelihoodRanker(lm), seed=10)
    assert own.flops["rank"] == pytest.approx(sum(forward_flops(lm.model, 4 + len(c)) for c in own.candidates)
                                             + forward_flops(lm.model, 4))
    one = best_of_k(lm, prompt, 1, 12, LikelihoodRanker(lm), seed=10)
    assert one.flops["rank"] == 0 and torch.equal(one.best, res.candidates[0])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        best_of_k(lm, prompt, 0, 12, oracle)


def test_speech_continuation_best_of():
    from speechkit.pipeline import PipelineError, SpeechContinuation
    from tests.unit.test_pipeline import K as PK
    from tests.unit.test_pipeline import speech_like, tiny_encoder, tiny_vocoder

    small = UnitLM.cold_start(tiny_config("llama", max_position_embeddings=512), num_units=PK, seed=0)
    sc = SpeechContinuation(tiny_encoder(), small, tiny_vocoder())
    wav = speech_like(2.0)
    audio, res = sc.best_of(wav, 16000, 3, seconds=1.0, seed=3, speaker="a")
    enc = sc.encoder(wav, sample_rate=16000)
    assert torch.equal(audio, sc.vocoder(torch.cat([enc["units"], res.best]), speaker="a", dur_prediction=True))
    assert len(res.candidates) == 3 and res.flops["total"] > res.flops["generate"] > 0
    with pytest.raises(PipelineError, match="ranker must be"):
        sc.best_of(wav, 16000, 2, ranker="asr")


def test_asr_ranker_scores_transcripts_with_the_text_lm(lm):
    from transformers import AutoModelForCausalLM

    from speechkit.ulm.best_of import ASRRanker
    from speechkit.ulm.model import token_log_likelihood

    class FakeASR:  # "transcribes" a wav by its length
        sample_rate = 16000

        def transcribe(self, wav):
            return {3: "", 4: "b c", 5: "a b c d"}[len(wav)]

    class FakeTokenizer:
        bos_token_id = 0

        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [ord(ch) - 90 for ch in text.split()]}

    torch.manual_seed(0)
    text_lm = AutoModelForCausalLM.from_config(tiny_config("llama", vocab_size=20)).eval()
    ranker = ASRRanker(FakeASR(), text_lm, FakeTokenizer())
    cands = [torch.tensor([1, 2]), torch.tensor([1, 2, 3]), torch.tensor([4])]
    with pytest.raises(ValueError, match="pass audio_fn"):
        best_of_k(lm, torch.tensor([3]), 3, 4, ranker)
    scores = ranker(torch.tensor([3]), cands, [torch.zeros(3), torch.zeros(4), torch.zeros(5)])
    expect = token_log_likelihood(text_lm, [[0, 8, 9], [0, 7, 8, 9, 10]], reduction="mean")
    assert scores[0] == float("-inf") and torch.allclose(scores[1:], expect)
    assert ranker.transcripts == ["", "b c", "a b c d"]
    assert ranker.flops(1, cands) == pytest.approx(forward_flops(text_lm, 3 + 5))
    res = best_of_k(lm, torch.tensor([3]), 3, 4, ranker, audio_fn=lambda u: torch.zeros(3 + (u.sum() % 3)))
    assert res.index == int(torch.argmax(res.scores)) and res.flops["rank"] > 0
