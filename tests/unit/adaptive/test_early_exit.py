"""Early-exit classifiers: gradient stops of SWEET, summed losses of shared early exit, independent multi-model
backbones, threshold inference and its cost, sweeps, save/load."""

from __future__ import annotations

import pytest
import torch

from speechkit.adaptive import (
    EarlyExitClassifier,
    EarlyExitConfig,
    EarlyExitStyleClassifier,
    build_early_exit,
    exit_probabilities,
    load_early_exit,
    save_early_exit,
    threshold_sweep,
    train_early_exit,
)
from speechkit.adaptive.model import encoder_prelude
from speechkit.units.hubert import HubertConfig, build_hubert

TINY = dict(conv_layers=[(8, 10, 5), (8, 3, 2), (8, 2, 2)], embed_dim=16, num_layers=4, num_heads=2, ffn_dim=32,
            conv_pos=4, conv_pos_groups=2)


def tiny(mode: str, exits=(1, 3, 4), classes: int = 3) -> EarlyExitClassifier:
    torch.manual_seed(0)
    return EarlyExitClassifier(build_hubert(HubertConfig(**TINY)), list(exits), classes, mode=mode)


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 1600, generator=g), torch.tensor([1600, 1200, 900]), torch.tensor([0, 1, 2])


def grads_of(model: EarlyExitClassifier, exit_index: int | None):
    """Gradient norm per segment after backpropagating one exit's loss (None: the summed loss)."""
    model.train()
    model.zero_grad(set_to_none=True)
    wav, lengths, y = batch()
    logits = model(wav, lengths)
    loss = model.loss(logits, y) if exit_index is None else torch.nn.functional.cross_entropy(logits[exit_index], y)
    loss.backward()
    out = []
    for seg in model.segments():
        gs = [p.grad for m in seg for p in m.parameters() if p.grad is not None]
        out.append(sum(float(g.abs().sum()) for g in gs))
    return out


def test_sweet_exit_loss_leaves_earlier_segments_without_gradient():
    model = tiny("sweet")
    for k in range(model.num_exits):
        g = grads_of(model, k)
        assert all(v == 0.0 for v in g[:k]), (k, g)
        assert g[k] > 0
        assert all(v == 0.0 for v in g[k + 1:])


def test_sweet_step_on_last_exit_keeps_earlier_segments_unchanged():
    model = tiny("sweet")
    before = [[p.detach().clone() for m in seg for p in m.parameters()] for seg in model.segments()]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    grads_of(model, model.num_exits - 1)
    opt.step()
    after = [[p.detach() for m in seg for p in m.parameters()] for seg in model.segments()]
    for k in range(model.num_exits - 1):
        assert all(torch.equal(a, b) for a, b in zip(before[k], after[k], strict=False)), k
    assert not all(torch.equal(a, b) for a, b in zip(before[-1], after[-1], strict=False))


def test_sweet_summed_loss_gives_each_segment_only_its_own_exit_gradient():
    model = tiny("sweet")
    total = grads_of(model, None)
    own = [grads_of(model, k)[k] for k in range(model.num_exits)]
    assert total == pytest.approx(own, rel=1e-5)


def test_shared_early_exit_later_losses_reach_earlier_layers_and_losses_sum():
    model = tiny("early_exit")
    g = grads_of(model, 2)
    assert g[0] > 0 and g[1] > 0
    wav, lengths, y = batch()
    logits = model(wav, lengths)
    manual = sum(torch.nn.functional.cross_entropy(lg, y) for lg in logits)
    assert torch.allclose(model.loss(logits, y), manual)
    first = model.segments()[0][-2]  # a layer of segment 0 (its last layer before the head)
    per_exit = []
    for k in range(3):
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(wav, lengths)[k], y).backward()
        per_exit.append(first.fc1.weight.grad.clone())
    model.zero_grad(set_to_none=True)
    model.loss(model(wav, lengths), y).backward()
    assert torch.allclose(first.fc1.weight.grad, sum(per_exit), atol=1e-6)


def test_multi_model_backbones_are_independent_and_grow():
    model = tiny("multi_model")
    assert [len(b.encoder.layers) for b in model.backbones] == [1, 3, 4]
    g = grads_of(model, 1)
    assert g[0] == 0.0 and g[1] > 0 and g[2] == 0.0
    assert model.exit_costs() == [1, 4, 8]


def test_exit_logits_use_the_encoder_layer_outputs():
    enc = build_hubert(HubertConfig(**TINY)).eval()
    model = EarlyExitClassifier(enc, [2, 4], 3, mode="early_exit").eval()
    wav, lengths, _ = batch()
    with torch.no_grad():
        x, mask, _ = encoder_prelude(model.backbones[0], wav, lengths)
        ref, _ = enc(wav, lengths, output_layer=2)
        for layer in model.backbones[0].encoder.layers[:2]:
            x = layer(x, mask)
        assert torch.allclose(x, ref, atol=1e-5)
        assert torch.allclose(model(wav, lengths)[0], model.heads[0](ref, mask), atol=1e-5)


@pytest.mark.parametrize("mode", ["sweet", "early_exit", "multi_model"])
def test_threshold_inference_stops_at_first_confident_exit_and_counts_layers(mode):
    model = tiny(mode).eval()
    calls = []
    for b in model.backbones:
        for layer in b.encoder.layers:
            layer.register_forward_hook(lambda *a: calls.append(1))
    wav = batch()[0][0]
    r0 = model.infer(wav, threshold=0.0)
    assert (r0.exit_index, r0.layers_run, len(calls)) == (0, 1, 1)
    calls.clear()
    r1 = model.infer(wav, threshold=1.01)
    assert r1.exit_index == 2 and r1.layers_run == model.exit_costs()[-1] == len(calls)
    probs = exit_probabilities(model, [wav])[0]  # (E, C)
    t = float(probs[1].max()) - 1e-6  # confident at exit 1 ...
    if float(probs[0].max()) < t:  # ... and not at exit 0
        r = model.infer(wav, threshold=t)
        assert r.exit_index == 1 and r.prediction == int(probs[1].argmax())
    assert torch.allclose(r1.probs, probs[2], atol=1e-5)


def test_threshold_sweep_matches_infer():
    model = tiny("sweet").eval()
    g = torch.Generator().manual_seed(3)
    wavs = [torch.randn(n, generator=g) for n in (800, 1000, 1600, 1300)]
    labels = [0, 1, 2, 1]
    probs = exit_probabilities(model, wavs)
    for t in (0.0, 0.34, 0.36, 0.4, 1.01):
        row = threshold_sweep(probs, labels, model.exit_costs(), [t])[0]
        results = [model.infer(w, t) for w in wavs]
        assert row["avg_layers"] == pytest.approx(sum(r.layers_run for r in results) / len(wavs))
        hits = sum(r.prediction == y for r, y in zip(results, labels, strict=True))
        assert row["accuracy"] == pytest.approx(hits / 4)


def test_training_learns_a_separable_task_and_roundtrips(tmp_path):
    t = torch.arange(3200) / 16000
    wavs = [0.5 * torch.sin(2 * torch.pi * f * t) for f in (200, 220, 240, 1800, 2000, 2200)]
    labels = [0, 0, 0, 1, 1, 1]
    cfg = EarlyExitConfig(mode="sweet", exit_layers=[1, 2], labels=["low", "high"])
    hcfg = HubertConfig(**{**TINY, "num_layers": 2})
    torch.manual_seed(0)
    model = build_early_exit(cfg, hcfg)
    losses = train_early_exit(model, wavs, labels, steps=40, batch_size=6, lr=3e-3, crop_samples=1600, log_every=0)
    assert sum(losses[-5:]) < sum(losses[:5])
    probs = exit_probabilities(model, wavs)
    assert threshold_sweep(probs, labels, model.exit_costs(), [1.01])[0]["accuracy"] == 1.0
    save_early_exit(tmp_path / "ee", model, cfg, hcfg, extra={"threshold": 0.8})
    loaded, cfg2, _ = load_early_exit(tmp_path / "ee")
    assert cfg2 == cfg
    assert torch.allclose(exit_probabilities(loaded, wavs), probs, atol=1e-6)
    clf = EarlyExitStyleClassifier.from_pretrained(tmp_path / "ee")
    assert clf.threshold == 0.8
    assert clf.accuracy([(w, 16000, cfg.labels[y]) for w, y in zip(wavs, labels, strict=False)]) >= 0.5
    assert len(clf.layers_run) == 6 and set(clf.layers_run) <= {1, 2}
    from speechkit.metrics.style import StyleClassifier

    via_metrics = StyleClassifier.from_pretrained(tmp_path / "ee")  # what `eval resynthesis --style-classifier` uses
    assert isinstance(via_metrics, EarlyExitStyleClassifier)
    assert via_metrics.predict(wavs[0], 16000) == clf.predict(wavs[0], 16000)


def test_config_and_constructor_errors_name_the_rule_and_value():
    with pytest.raises(ValueError, match="mode must be one of .* Found 'fast'"):
        EarlyExitConfig(mode="fast", labels=["a", "b"]).validate()
    with pytest.raises(ValueError, match=r"strictly increasing .* Found \[2, 2\]"):
        EarlyExitConfig(exit_layers=[2, 2], labels=["a", "b"]).validate()
    with pytest.raises(ValueError, match=r"<= the encoder's 4 layers. Found \[1, 5\]"):
        EarlyExitConfig(exit_layers=[1, 5], labels=["a", "b"]).validate(4)
    with pytest.raises(ValueError, match=r"in \[1, 4\]. Found \[0, 2\]"):
        tiny("sweet", exits=(0, 2))
