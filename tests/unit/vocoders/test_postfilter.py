"""The spectral-detail postfilter of the unit-to-mel vocoder: what it keeps and what it scales, that it is frame-local
(so the stream applies it as the offline call does), how its gain is measured, and the folder setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speechkit.vocoders import VocoderError
from speechkit.vocoders.unitmel.config import UnitMelConfig
from speechkit.vocoders.unitmel.postfilter import detail_ratio, enhance_detail
from tests.unit.vocoders.test_unit_mel import tiny

ROOT = Path(__file__).resolve().parents[3]


def _alternating(num_mels: int, frames: int) -> torch.Tensor:
    return torch.tensor([(-1.0) ** b for b in range(num_mels)])[:, None].expand(num_mels, frames)


def test_gain_one_is_the_identity_and_the_envelope_is_kept():
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(80, 30, generator=g)
    assert enhance_detail(mel, 1.0) is mel
    # a ramp across the bins is its own envelope away from the edges: no gain changes it there
    ramp = torch.linspace(-8, 2, 80)[:, None].expand(80, 30).clone()
    assert torch.allclose(enhance_detail(ramp, 1.7)[3:-3], ramp[3:-3], atol=1e-5)
    # detail that alternates from bin to bin averages out of the 5-bin Hann envelope: it alone is scaled
    detail = 0.3 * _alternating(80, 30)
    out = enhance_detail(ramp + detail, 1.7)
    assert torch.allclose(out[3:-3], (ramp + 1.7 * detail)[3:-3], atol=1e-5)


def test_postfilter_is_frame_local():
    mel = torch.randn(2, 80, 40, generator=torch.Generator().manual_seed(1))
    whole = enhance_detail(mel, 1.43)
    pieces = torch.cat([enhance_detail(mel[..., i: i + 7], 1.43) for i in range(0, 40, 7)], dim=-1)
    assert torch.allclose(whole, pieces, atol=1e-6)
    assert torch.allclose(whole[1], enhance_detail(mel[1], 1.43), atol=1e-6)   # batch rows independent


def test_detail_ratio_measures_the_missing_detail():
    rng = np.random.default_rng(0)
    pairs = []
    for n in (50, 70):
        amp = torch.from_numpy(rng.uniform(0.1, 1.0, n)).float()
        base = torch.from_numpy(rng.normal(size=n)).float()              # a level per frame, flat across bins
        true = base + amp * _alternating(80, n)
        pred = base + 0.5 * amp * _alternating(80, n + 3)[:, :n]         # half the detail
        pairs.append((true, torch.cat([pred, pred[:, :3]], dim=1)))      # a longer prediction is cut
    assert detail_ratio(pairs) == pytest.approx(2.0, rel=1e-5)
    with pytest.raises(ValueError):
        detail_ratio([])


def test_config_checks_and_old_folders_read_without_a_postfilter():
    with pytest.raises(VocoderError, match="detail_gain"):
        UnitMelConfig(num_units=4, detail_gain=0.0).validate()
    with pytest.raises(VocoderError, match="detail_width"):
        UnitMelConfig(num_units=4, detail_width=4).validate()
    old = UnitMelConfig(num_units=4).to_dict()
    del old["detail_gain"], old["detail_width"]
    assert UnitMelConfig.from_dict(old).detail_gain == 1.0


def test_vocoder_applies_its_gain_offline_and_in_the_stream(tmp_path):
    voc = tiny()
    units, durations = torch.tensor([1, 5, 3, 7, 2]), torch.tensor([3, 4, 2, 5, 3])
    raw = voc.mel(units, speaker="a", durations=durations)
    voc.config.detail_gain = 1.6
    voc.save_pretrained(tmp_path / "v")
    again = type(voc).from_pretrained(tmp_path / "v")
    assert again.config.detail_gain == 1.6
    assert torch.allclose(again.mel(units, speaker="a", durations=durations), enhance_detail(raw, 1.6), atol=1e-5)
    # the Griffin-Lim stream decodes windows of units and post-filters them: with whole context it equals offline
    from speechkit.vocoders.streaming import UnitMelGriffinLimStream

    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 12, 64))
    seen = []
    stream = UnitMelGriffinLimStream(again, "a", None, left=64, lookahead=64, gl_lookahead=6, gl_block=5, gl_iters=2)
    original = again.postfilter
    again.postfilter = lambda m: seen.append(m.shape) or original(m)
    for s in range(0, 64, 8):
        stream.push(s, frames[s: s + 8], frames[s + 8: s + 72])
    assert len(seen) == 8   # every window's mel went through the postfilter


def test_measuring_script_writes_the_gain_it_measures(tmp_path):
    """data_prep/mel_postfilter.py on a tiny decoder and two utterances: the gain written is detail_ratio of the
    true and predicted log-mels, and the folder then loads with it."""
    from speechkit.audio import io
    from speechkit.train.unit_mel import mel_transform

    voc = tiny()
    voc.save_pretrained(tmp_path / "voc")
    rng = np.random.default_rng(0)
    records, pairs = [], []
    for i, spk in enumerate(["a", "b"]):
        units = rng.integers(0, 12, 6)
        durations = rng.integers(2, 5, 6)
        n = int(durations.sum()) * 320
        wav = (0.3 * np.sin(np.arange(n) * 2 * np.pi * (150 + 80 * i) / 16000) + 0.01 * rng.normal(size=n))
        path = tmp_path / "audio" / spk / f"utt{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        io.save(path, torch.from_numpy(wav).float()[None], 16000)
        records.append({"id": f"utt{i}", "audio": str(path), "units": units.tolist(), "duration": durations.tolist()})
        w = io.load(path, sample_rate=16000)[0]
        w = w / w.abs().max() * 0.95
        pairs.append((mel_transform(voc.config)(w[None])[0],
                      voc.mel(torch.tensor(units), speaker=spk, durations=torch.tensor(durations))))
    (tmp_path / "units.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    r = subprocess.run([sys.executable, str(ROOT / "data_prep/mel_postfilter.py"), "--vocoder", str(tmp_path / "voc"),
                        "--units", str(tmp_path / "units.jsonl"), "--audio", str(tmp_path / "audio"),
                        "--names", "parent", "--write"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    written = json.loads((tmp_path / "voc" / "config.json").read_text())["model"]["detail_gain"]
    assert written == pytest.approx(round(detail_ratio(pairs), 3), abs=2e-3)
    assert type(voc).from_pretrained(tmp_path / "voc").config.detail_gain == written
