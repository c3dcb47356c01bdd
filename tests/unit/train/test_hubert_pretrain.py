import json

import numpy as np
import torch

from speechkit.audio import io
from speechkit.data.manifest import ManifestEntry, UnitRecord, write_tsv, write_units_jsonl
from speechkit.train.hubert import LabeledAudio, PretrainHead, collate, compute_mask
from speechkit.units.hubert import HubertConfig


def test_compute_mask_spans_stay_inside_valid_frames():
    rng = np.random.default_rng(0)
    mask = compute_mask([100, 40, 5], 100, mask_prob=0.5, mask_length=10, rng=rng)
    assert mask.shape == (3, 100)
    assert mask[1, 40:].sum() == 0 and mask[2].sum() == 0  # nothing past the valid frames; too short: no mask
    assert 0.3 < mask[0].float().mean() < 0.8  # ~ 1 - exp(-0.5) with overlaps
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], mask[0].numpy().astype(int), [0]]))))[::2]
    assert (runs >= 10).all()  # spans of mask_length frames (merged when they overlap)


def test_crops_keep_labels_aligned_with_frames(tmp_path):
    cfg = HubertConfig(conv_layers=[(8, 10, 5), (8, 4, 4)], embed_dim=8, num_layers=1, num_heads=2, ffn_dim=8,
                       conv_pos=4, conv_pos_groups=2)  # hop 20 samples
    n = 2000
    io.save(tmp_path / "a.wav", (np.arange(n) % 7 / 10).astype(np.float32), 16000, subtype="FLOAT")
    write_tsv(tmp_path / "m.tsv", tmp_path, [ManifestEntry("a.wav", n)])
    labels = list(range(cfg.num_frames(n)))  # label = frame index, so any crop shows its offset
    write_units_jsonl(tmp_path / "l.jsonl", [UnitRecord("a", "a.wav", labels)])
    ds = LabeledAudio(str(tmp_path / "m.tsv"), str(tmp_path / "l.jsonl"), cfg, crop_seconds=0.025, seed=3)
    full, _ = io.load(tmp_path / "a.wav")
    offsets = set()
    for epoch in range(6):
        ds.epoch = epoch
        wav, lab = ds[0]
        assert torch.equal(ds[0][0], wav)  # a function of (seed, epoch, index): every worker and a resume agree
        offsets.add(int(lab[0]))
        assert len(lab) == cfg.num_frames(len(wav)) == cfg.num_frames(400)
        offset = int(lab[0]) * cfg.hop_size  # the crop starts exactly at its first label's frame
        assert torch.equal(wav, full[offset : offset + len(wav)])
        assert lab.tolist() == list(range(int(lab[0]), int(lab[0]) + len(lab)))
    assert len(offsets) > 1  # a new crop each epoch
    audio, lengths, lab = collate([ds[0], (torch.zeros(100), torch.tensor([1, 2]))])
    assert audio.shape == (2, 400) and lengths.tolist() == [400, 100] and lab[1, 2:].eq(-100).all()


def test_head_logits_are_scaled_cosines():
    head = PretrainHead(6, 4, 5, logit_temp=0.1)
    x = torch.randn(3, 6)
    logits = head(x)
    assert logits.shape == (3, 5) and logits.abs().max() <= 10.0 + 1e-5


def test_unmasked_loss_warm_start_and_cached_audio(tmp_path):
    # phone-target training: the loss adds the unmasked frames (fairseq pred_nomask_weight), the encoder can start
    # from another HuBERT, and decoded audio can stay in memory
    from speechkit.cli.train import compose
    from speechkit.train.hubert import run
    from speechkit.units.hubert.model import HubertModel

    rng = np.random.default_rng(0)
    entries, records = [], []
    for i in range(4):
        io.save(tmp_path / f"u{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
        entries.append(ManifestEntry(f"u{i}.wav", 16000))
        records.append(UnitRecord(f"u{i}", f"u{i}.wav", [(f // 5) % 3 for f in range(50)]))
    write_tsv(tmp_path / "m.tsv", tmp_path, entries)
    write_units_jsonl(tmp_path / "l.jsonl", records)
    base = ["preset=debug", f"data.train={tmp_path / 'm.tsv'}", f"data.train_labels={tmp_path / 'l.jsonl'}",
            f"data.valid={tmp_path / 'm.tsv'}", f"data.valid_labels={tmp_path / 'l.jsonl'}", "data.cache=true",
            "pretrain.num_classes=3", "optim.max_steps=2", "train.valid_every=2"]
    assert run(compose("hubert", base + ["pretrain.unmasked_weight=1.0", f"out={tmp_path / 'a'}"])) == 0
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    valid = [h for h in history if "valid_acc" in h]
    assert valid and 0.0 <= valid[-1]["valid_acc_unmasked"] <= 1.0
    # warm start: with a learning rate of ~0 the exported encoder is the one it started from
    assert run(compose("hubert", base + [f"train.init={tmp_path / 'a' / 'model'}", "optim.lr=1e-12",
                                         "optim.max_steps=1", f"out={tmp_path / 'b'}"])) == 0
    a = HubertModel.from_pretrained(tmp_path / "a" / "model")
    b = HubertModel.from_pretrained(tmp_path / "b" / "model")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k


def test_speed_perturbation_scales_audio_and_moves_labels_with_it(tmp_path):
    cfg = HubertConfig(conv_layers=[(8, 10, 5), (8, 4, 4)], embed_dim=8, num_layers=1, num_heads=2, ffn_dim=8,
                       conv_pos=4, conv_pos_groups=2)  # hop 20 samples at 16 kHz
    n = 16000
    t = np.arange(n) / 16000
    io.save(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, subtype="FLOAT")
    write_tsv(tmp_path / "m.tsv", tmp_path, [ManifestEntry("a.wav", n)])
    labels = [f // 100 for f in range(cfg.num_frames(n))]  # 8 label runs of 100 frames (0.125 s each)
    write_units_jsonl(tmp_path / "l.jsonl", [UnitRecord("a", "a.wav", labels)])
    ds = LabeledAudio(str(tmp_path / "m.tsv"), str(tmp_path / "l.jsonl"), cfg, crop_seconds=0.0, seed=0,
                      speed_perturb=(12800,))  # 16000 / 12800 = 1.25x faster and higher
    wav, lab = ds[0]
    assert len(wav) == 12800 and len(lab) == cfg.num_frames(12800)
    spectrum = np.abs(np.fft.rfft(wav.numpy()))
    assert abs(np.argmax(spectrum) * 16000 / len(wav) - 250) < 2  # 200 Hz played 1.25x faster
    runs = np.diff(np.flatnonzero(np.diff(lab.numpy())))
    assert (np.abs(runs - 80) <= 1).all()  # each label run is 1.25x shorter: 100 -> 80 frames
    assert lab[0] == 0 and lab[-1] == labels[-1]
