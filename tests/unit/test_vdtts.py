"""speechkit.vdtts: config rules, the model's inputs and outputs, the ablation switch, save/load, dubbing."""

from __future__ import annotations

import itertools
import math
import shutil

import numpy as np
import pytest
import torch

from speechkit.audio import video
from speechkit.errors import SpeechkitError
from speechkit.train.vdtts import guided_attention_loss
from speechkit.vdtts.config import VDTTSConfig, VDTTSConfigError
from speechkit.vdtts.factory import build_vdtts
from speechkit.vdtts.inference import VDTTS, resample_frames, save_model
from speechkit.vdtts.model import AlignedVDTTSModel, monotonic_alignment, segment_positions
from speechkit.vdtts.text import phonemize

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed (make install)")
PHONEMES = ["@", "A", "D", "E", "I", "b", "d", "h", "l", "m", "n", "r", "s", "t", "w", "@U", "r=", "z", "k", "i"]


def tiny_config(**kw) -> VDTTSConfig:
    base = dict(phonemes=PHONEMES, speakers=["us1", "us2"], d_model=16, text_conv_layers=1, video_channels=(4,),
                video_layers=1, decoder_layers=1, num_heads=2, speaker_dim=4, postnet_layers=1, crop_size=16,
                dropout=0.0, mel_layers=2)
    return VDTTSConfig(**{**base, **kw})


def inputs(b: int = 2, t: int = 10, n: int = 7, size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(2, len(PHONEMES) + 2, (b, n), generator=g), torch.tensor([n, n - 2]),
            torch.rand(b, t, size, size, generator=g), torch.tensor([t, t - 3]), torch.tensor([0, 1]))


def test_config_rules_name_field_and_value():
    with pytest.raises(VDTTSConfigError, match=r"sample_rate / \(fps \* hop_length\) must be a positive whole"):
        tiny_config(hop_length=150).validate()
    with pytest.raises(VDTTSConfigError, match="d_model must be a multiple of num_heads=3. Found 16"):
        tiny_config(num_heads=3).validate()
    with pytest.raises(VDTTSConfigError, match="mouth_box"):
        tiny_config(mouth_box=(0.5, 0.5, 0.2, 0.9)).validate()
    cfg = tiny_config()
    assert cfg.mel_frames_per_video_frame == 4 and cfg.samples_per_video_frame == 640
    assert VDTTSConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(VDTTSConfigError, match="unknown VDTTS config fields"):
        VDTTSConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_mel_is_r_frames_per_video_frame_and_follows_the_video():
    torch.manual_seed(0)
    model = build_vdtts(tiny_config(decoder="attention")).eval()
    ids, n, crops, t, spk = inputs()
    mel0, mel, attn = model(ids, n, crops, t, spk)
    assert mel.shape == mel0.shape == (2, 40, 80) and attn.shape == (2, 10, 7)
    assert torch.allclose(attn[1, :, :5].sum(-1), torch.ones(10), atol=1e-5)  # padding phonemes get no weight
    assert attn[1, :, 5:].abs().max() == 0
    other = model(ids, n, torch.rand_like(crops), t, spk)[1]
    assert (other - mel).abs().max() > 1e-4  # the video is an input
    spk_other = model(ids, n, crops, t, torch.tensor([1, 0]))[1]
    assert (spk_other - mel).abs().max() > 1e-4  # and so is the speaker


@pytest.mark.parametrize("decoder", ["aligned", "attention"])
def test_text_only_ablation_ignores_the_video(decoder):
    torch.manual_seed(0)
    model = build_vdtts(tiny_config(use_video=False, decoder=decoder)).eval()
    assert model.video is None
    ids, n, crops, t, spk = inputs()
    a = model(ids, n, crops, t, spk)[1]
    b = model(ids, n, torch.rand_like(crops), t, spk)[1]
    c = model(ids, n, None, t, spk)[1]
    assert a.shape == (2, 40, 80) and torch.equal(a, b) and torch.equal(a, c)


def test_config_without_decoder_field_is_the_attention_model():
    d = tiny_config().to_dict()
    assert d["decoder"] == "aligned" and VDTTSConfig.from_dict(d).decoder == "aligned"
    del d["decoder"]  # a config.json written before the aligned decoder existed
    assert VDTTSConfig.from_dict(d).decoder == "attention"
    with pytest.raises(VDTTSConfigError, match="decoder must be 'aligned' or 'attention'. Found 'rnn'"):
        tiny_config(decoder="rnn").validate()


def path_log_probs(path: list[int], num_classes: int, p: float = 0.8) -> torch.Tensor:
    lp = torch.full((len(path), num_classes), (1 - p) / (num_classes - 1)).log()
    lp[torch.arange(len(path)), torch.tensor(path)] = math.log(p)
    return lp


def test_monotonic_alignment_finds_the_path_and_never_skips_a_phoneme():
    path = [0, 0, 1, 1, 1, 2, 2, 0, 0, 3, 4, 4, 4, 5, 6, 6, 7, 7, 0]
    assert monotonic_alignment(path_log_probs(path, 8), 7).tolist() == path
    # a frame classifier that skips phoneme 3 and goes back to 2: the path still says 1..7 once each, in order
    noisy = [0, 1, 1, 2, 2, 4, 4, 2, 5, 5, 6, 7, 7, 0]
    got = monotonic_alignment(path_log_probs(noisy, 8), 7).tolist()
    assert [k for k, _ in itertools.groupby(got) if k] == [1, 2, 3, 4, 5, 6, 7]
    assert sum(a == b for a, b in zip(got, noisy, strict=True)) >= len(noisy) - 3
    g = torch.Generator().manual_seed(0)
    for seed in range(5):
        lp = torch.log_softmax(torch.randn(30, 9, generator=g) * 3, -1)
        got = monotonic_alignment(lp, 6).tolist()  # columns past the 6 phonemes (padding) are never chosen
        assert [k for k, _ in itertools.groupby(got) if k] == [1, 2, 3, 4, 5, 6], seed
    # fewer frames than phonemes: spread evenly, in order
    assert monotonic_alignment(torch.zeros(3, 8), 7).tolist() == [1, 3, 5]
    assert monotonic_alignment(torch.zeros(4, 1), 0).tolist() == [0, 0, 0, 0]


def test_monotonic_alignment_is_the_best_path():
    """Against brute force over every path that says each phoneme in one run, in order (silence anywhere)."""
    g = torch.Generator().manual_seed(1)
    lp = torch.log_softmax(torch.randn(7, 4, generator=g), -1)
    best, best_score = None, -math.inf
    for path in itertools.product(range(4), repeat=7):
        if [k for k, _ in itertools.groupby(path) if k] != [1, 2, 3]:
            continue
        score = sum(float(lp[t, c]) for t, c in enumerate(path))
        if score > best_score:
            best, best_score = list(path), score
    got = monotonic_alignment(lp, 3).tolist()
    assert math.isclose(sum(float(lp[t, c]) for t, c in enumerate(got)), best_score, rel_tol=1e-6), (got, best)


def test_segment_positions_say_where_in_each_run_a_frame_is():
    pos = segment_positions(torch.tensor([[0, 0, 1, 1, 1, 1, 2]]))[0]
    assert pos.shape == (7, 8)
    frac = torch.tensor([0.25, 0.75, 0.125, 0.375, 0.625, 0.875, 0.5])
    assert torch.allclose(pos[:, 0], torch.sin(math.pi * frac), atol=1e-6)
    assert torch.allclose(pos[:, 6] * 4, torch.log(torch.tensor([2.0, 2, 4, 4, 4, 4, 1])), atol=1e-6)
    assert torch.allclose(pos[:, 7] * 16, torch.tensor([0.0, 1, 0, 1, 2, 3, 0]))


def test_aligned_model_speaks_the_alignment_it_is_given():
    torch.manual_seed(0)
    model = build_vdtts(tiny_config()).eval()
    assert isinstance(model, AlignedVDTTSModel)
    ids, n, crops, t, spk = inputs()
    mel0, mel, logp = model(ids, n, crops, t, spk)
    assert mel.shape == mel0.shape == (2, 40, 80) and logp.shape == (2, 40, 8)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 40), atol=1e-5)
    assert torch.isinf(logp[1, :, 6:]).all() and not torch.isinf(logp[1, :, :6]).any()  # padding phonemes excluded
    # without an alignment it speaks the aligner's best monotonic path
    path = torch.stack([model.best_alignment(logp, n, t)[0], torch.zeros(40, dtype=torch.long)])
    path[1, :28] = monotonic_alignment(logp[1, :28], 5)
    assert torch.equal(model(ids, n, crops, t, spk, alignment=path)[1], mel)
    # a different alignment, phoneme identities, video or speaker change the mel
    other = torch.arange(40).repeat(2, 1) * 7 // 40 + 1
    assert (model(ids, n, crops, t, spk, alignment=other)[1] - mel).abs().max() > 1e-4
    assert (model(ids.flip(1), n, crops, t, spk, alignment=path)[1] - mel).abs().max() > 1e-4
    assert (model(ids, n, torch.rand_like(crops), t, spk, alignment=path)[1] - mel).abs().max() > 1e-4
    assert (model(ids, n, crops, t, torch.tensor([1, 0]), alignment=path)[1] - mel).abs().max() > 1e-4


def test_guided_attention_prefers_the_diagonal():
    t, n = 12, 6
    diag = torch.zeros(1, t, n)
    anti = torch.zeros(1, t, n)
    for i in range(t):
        diag[0, i, i * n // t] = 1
        anti[0, i, n - 1 - i * n // t] = 1
    lengths = (torch.tensor([t]), torch.tensor([n]))
    assert guided_attention_loss(diag, *lengths, 0.2) < 0.1 < guided_attention_loss(anti, *lengths, 0.2)


def test_resample_frames_keeps_duration():
    assert list(resample_frames(5, 25, 25)) == [0, 1, 2, 3, 4]
    idx = resample_frames(60, 30, 25)
    assert len(idx) == 50 and idx[0] == 0 and idx[-1] == 59 and np.all(np.diff(idx) >= 1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vdtts") / "model"
    cfg = tiny_config()
    save_model(folder, build_vdtts(cfg), cfg)
    return folder


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    from speechkit.synth.talking_face import render_face

    frames = np.stack([render_face("tan", abs(np.sin(i / 3)), 1.0) for i in range(37)])
    return video.write_video(tmp_path_factory.mktemp("face") / "face.mp4", frames, 25)


@needs_espeak
def test_save_load_roundtrip_gives_the_same_mel(tiny_model):
    a = VDTTS.from_pretrained(tiny_model)
    b = VDTTS.from_pretrained(tiny_model)
    crops = np.random.default_rng(0).integers(0, 255, (9, 16, 16), dtype=np.uint8)
    mel = a.mel(crops, "The red bird.", speaker="us2")
    assert mel.shape == (80, 36) and torch.equal(mel, b.mel(crops, "The red bird.", speaker="us2"))
    assert a.speakers == ["us1", "us2"] and a.output_sample_rate == 16000
    with pytest.raises(SpeechkitError, match=r"speaker must be one of \['us1', 'us2'\]"):
        a.mel(crops, "The red bird.", speaker="nobody")


def test_from_pretrained_errors(tmp_path):
    from speechkit.train.checkpoint import CheckpointError, save_pretrained

    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        VDTTS.from_pretrained(tmp_path)
    save_pretrained(tmp_path / "voc", {"w": torch.zeros(1)}, {"kind": "mel_hifigan"})
    with pytest.raises(CheckpointError, match="not a VDTTS model"):
        VDTTS.from_pretrained(tmp_path / "voc")


@needs_espeak
def test_dub_keeps_every_frame_and_adds_speech_of_the_video_length(tiny_model, face_video, tmp_path):
    out = VDTTS.from_pretrained(tiny_model).dub(face_video, "Hello there.", tmp_path / "dub.mp4", speaker="us1")
    src, dub = video.read_video(face_video, audio=False), video.read_video(out)
    assert np.array_equal(src.frames, dub.frames) and dub.fps == src.fps
    assert dub.sample_rate == 16000 and abs(len(dub.audio) / 16000 - 37 / 25) < 0.1  # AAC adds < 1 frame of padding
    assert np.sqrt(np.mean(dub.audio**2)) > 0.01  # audible, not silence


@needs_espeak
def test_dub_rejects_empty_text_and_videos_without_frames(tiny_model, face_video, tmp_path):
    from speechkit.audio import io as audio_io
    from speechkit.vdtts.text import TextError

    tts = VDTTS.from_pretrained(tiny_model)
    with pytest.raises(TextError, match="text must not be empty"):
        tts.dub(face_video, "  ", tmp_path / "o.mp4")
    wav = tmp_path / "a.wav"
    audio_io.save(wav, np.zeros(1600, np.float32), 16000)
    with pytest.raises(video.VideoError, match="a.wav: has no video stream"):
        tts.dub(wav, "Hello.", tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def save_mel_hifigan(folder, rates=(5, 4, 4, 2), sample_rate: int = 16000):
    """An untrained 16-channel mel HiFi-GAN (hop = product of ``rates``) saved at ``folder``; returns ``folder``."""
    from speechkit.vocoders import HiFiGANVocoder
    from speechkit.vocoders.hifigan.config import GeneratorConfig, MelHiFiGANConfig
    from speechkit.vocoders.hifigan.factory import build_mel_hifigan

    kernels = {5: 11, 4: 8, 8: 16, 2: 4}
    gen_cfg = GeneratorConfig(upsample_initial_channel=16, upsample_rates=rates,
                              upsample_kernel_sizes=tuple(kernels[r] for r in rates), resblock_kernel_sizes=(3,),
                              resblock_dilation_sizes=((1, 3, 5),))
    cfg = MelHiFiGANConfig(num_mels=80, sample_rate=sample_rate, generator=gen_cfg)
    HiFiGANVocoder(build_mel_hifigan(cfg), cfg).save_pretrained(folder)
    return folder


def test_hifigan_vocoder_must_match_the_features(tmp_path):
    from speechkit.vdtts.vocoding import load_vocoder

    cfg = tiny_config()
    voc = load_vocoder(cfg, "hifigan", save_mel_hifigan(tmp_path / "ok"))
    assert voc(torch.zeros(80, 8)).shape == (8 * 160,)
    with pytest.raises(SpeechkitError, match=r"\(sample_rate, hop_length, num_mels\) = \(22050, 256, 80\)"):
        load_vocoder(cfg, "hifigan", save_mel_hifigan(tmp_path / "v1", (8, 8, 2, 2), 22050))
    with pytest.raises(SpeechkitError, match="vocoder must be 'griffinlim', 'hifigan' or 'vocos'. Found 'wavenet'"):
        load_vocoder(cfg, "wavenet")


def test_griffin_lim_inverts_a_mel_to_the_right_length():
    from speechkit.vdtts.factory import build_mel
    from speechkit.vdtts.vocoding import GriffinLimVocoder

    cfg = tiny_config()
    t = np.arange(16000) / 16000
    wav = torch.from_numpy((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    mel = build_mel(cfg)(wav[None])[0]
    out = GriffinLimVocoder(cfg, n_iter=16)(mel).numpy()
    assert out.shape == (16000,)
    spec = np.abs(np.fft.rfft(out[2000:14000]))
    assert abs(np.argmax(spec) * 16000 / 12000 - 440) < 15


@needs_espeak
def test_mel_speaks_a_given_alignment_and_checks_it(tiny_model):
    tts = VDTTS.from_pretrained(tiny_model)
    crops = np.random.default_rng(0).integers(0, 255, (9, 16, 16), dtype=np.uint8)
    n = len(phonemize("The red bird."))
    align = np.minimum(np.arange(36) * n // 30, n)  # phonemes in order, silence at the end
    a = tts.mel(crops, "The red bird.", alignment=align)
    assert a.shape == (80, 36) and torch.equal(a, tts.mel(crops, "The red bird.", alignment=torch.tensor(align)))
    assert (a - tts.mel(crops, "The red bird.", alignment=np.zeros(36, int))).abs().max() > 1e-4
    with pytest.raises(SpeechkitError, match=r"alignment must be 36 classes in \[0, \d+\] .* shape \(35,\)"):
        tts.mel(crops, "The red bird.", alignment=align[:35])
    with pytest.raises(SpeechkitError, match=r"shape \(0,\), range \[0, 0\]"):
        tts.mel(crops, "The red bird.", alignment=np.zeros(0, int))
    with pytest.raises(SpeechkitError, match=r"range \[0, 99\]"):
        tts.mel(crops, "The red bird.", alignment=np.r_[align[:35], 99])
    old = VDTTS(build_vdtts(tiny_config(decoder="attention")), tiny_config(decoder="attention"))
    with pytest.raises(SpeechkitError, match="alignment= needs a model with decoder 'aligned'"):
        old.mel(crops, "The red bird.", alignment=align)
