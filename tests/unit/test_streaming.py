"""Streaming resynthesis: the resampler, the encoder and deduplication across chunks, the block vocoders, and
``Resynthesizer.stream`` / ``speechkit resynth --stream`` on tiny random models."""

from __future__ import annotations

import io as pyio
import sys

import numpy as np
import pytest
import torch

from speechkit.audio import io
from speechkit.audio.streaming import StreamingResampler, read_pcm16
from speechkit.pipeline import PipelineError, Resynthesizer, StreamConfig
from speechkit.units.encoder import deduplicate
from speechkit.units.streaming import StreamingDeduplicator, StreamingUnitEncoder, stream_units
from speechkit.vocoders.streaming import StreamingGriffinLim, WindowVocoderStream
from tests.unit.test_pipeline import speech_like, tiny_encoder, tiny_vocoder
from tests.unit.vocoders.test_unit_mel import tiny as tiny_unit_mel


def pieces(x: torch.Tensor, sizes) -> list[torch.Tensor]:
    """``x`` cut into consecutive pieces of the given sizes (cycled)."""
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(x[i: i + n])
        i, k = i + n, k + 1
    return out


def random_sizes(seed: int, low: int, high: int) -> list[int]:
    return np.random.default_rng(seed).integers(low, high, 64).tolist()


@pytest.fixture(scope="module")
def rs_mel() -> Resynthesizer:
    torch.manual_seed(0)
    return Resynthesizer(tiny_encoder(), tiny_unit_mel())


@pytest.fixture(scope="module")
def rs_gan() -> Resynthesizer:
    return Resynthesizer(tiny_encoder(), tiny_vocoder())


# ---------------------------------------------------------------------------------------------- the resampler
@pytest.mark.parametrize("orig", [48000, 44100, 8000])
def test_streaming_resampler_equals_resampling_the_whole_signal(orig):
    x = torch.randn(orig + 777) * 0.3
    ref = io.resample(x, orig, 16000)
    for sizes in ([1, 2, 3], [orig // 50], random_sizes(orig, 1, 5000)):
        rs = StreamingResampler(orig, 16000)
        y = torch.cat([rs.push(p) for p in pieces(x, sizes)] + [rs.flush()])
        assert y.shape == ref.shape
        assert float((y - ref).abs().max()) < 1e-5


# ---------------------------------------------------------------------------------------------- encoder side
def test_deduplication_carries_a_run_across_chunks():
    dd = StreamingDeduplicator()
    u1, d1 = dd.push(torch.tensor([5, 5, 2]))
    u2, d2 = dd.push(torch.tensor([2, 2]))  # continues the open run of 2
    u3, d3 = dd.push(torch.tensor([2, 7]))
    u4, d4 = dd.flush()
    assert u1.tolist() == [5] and d1.tolist() == [2]
    assert u2.tolist() == [] and d2.tolist() == []
    assert u3.tolist() == [2] and d3.tolist() == [4]  # one unit, the summed duration
    assert u4.tolist() == [7] and d4.tolist() == [1]
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 3, 500))
    dd, runs = StreamingDeduplicator(), []
    for p in pieces(frames, random_sizes(1, 1, 9)):
        runs.append(dd.push(p))
    runs.append(dd.flush())
    ref = deduplicate(frames)
    assert torch.equal(torch.cat([r[0] for r in runs]), ref[0])
    assert torch.equal(torch.cat([r[1] for r in runs]), ref[1])


def test_encoder_with_whole_context_gives_the_offline_units():
    enc = tiny_encoder()
    wav = speech_like(2.0)
    s = StreamingUnitEncoder(enc, block=4, left_context=1000, lookahead=1000)
    blocks = [b for p in pieces(wav, [1234]) for b in s.push(p)] + s.flush()
    frames = torch.cat([b.final for b in blocks])
    offline = enc.quantizer(enc.reader(wav))
    assert frames.shape == offline.shape
    # equal up to float rounding: a random tiny model has near-ties between centroids
    assert float((frames == offline).float().mean()) > 0.97
    assert [b.start for b in blocks] == list(range(0, len(offline), 4))


def test_encoder_blocks_do_not_depend_on_how_the_input_is_cut():
    enc = tiny_encoder()
    wav = speech_like(3.0)

    def run(sizes):
        s = StreamingUnitEncoder(enc, block=8, left_context=20, lookahead=6)
        return [b for p in pieces(wav, sizes) for b in s.push(p)] + s.flush()

    a, b = run([320]), run(random_sizes(3, 1, 4000))
    assert len(a) == len(b) and len(a) > 5
    for x, y in zip(a, b, strict=True):
        assert x.start == y.start and torch.equal(x.final, y.final) and torch.equal(x.provisional, y.provisional)
    assert all(len(x.provisional) == 6 for x in a[:-2])  # lookahead units come with every block but the last


def test_stream_units_equals_deduplicated_frame_units():
    enc = tiny_encoder()
    wav = speech_like(2.0, sr=22050)
    runs = list(stream_units(enc, pieces(wav, [999]), 22050, block=4, left_context=12, lookahead=4))
    s = StreamingUnitEncoder(enc, block=4, left_context=12, lookahead=4)
    frames = torch.cat([b.final for b in s.push(io.resample(wav, 22050, 16000)) + s.flush()])
    ref = deduplicate(frames)
    assert len(runs) > 3
    assert torch.equal(torch.cat([r["units"] for r in runs]), ref[0])
    assert torch.equal(torch.cat([r["durations"] for r in runs]), ref[1])
    assert int(ref[1].sum()) == int(enc(wav, sample_rate=22050)["durations"].sum())  # the offline frame count


def test_encoder_state_stays_bounded_on_a_long_stream():
    enc = tiny_encoder()
    s = StreamingUnitEncoder(enc, block=8, left_context=20, lookahead=6)
    sizes = []
    piece = speech_like(1.0)
    for _ in range(40):
        s.push(piece)
        sizes.append((s._samples.numel(), len(s._feats) if s._feats is not None else 0))
    assert s.frames_available > 1900
    assert max(n for n, _ in sizes[5:]) <= 16000 + 8 * 320 + 400  # at most a piece and a block of samples
    assert max(f for _, f in sizes[5:]) <= 20 + 8 + 6 + 50        # the window, plus what one piece adds


# ---------------------------------------------------------------------------------------------- vocoder side
def _seam_and_body_error(y: torch.Tensor, mags: torch.Tensor, seams: list[int], hop: int = 256) -> tuple:
    """Spectral convergence of ``y`` against ``mags``, per frame, averaged over frames whose window holds a seam
    (a block boundary) and over the others."""
    spec = torch.stft(y, 1024, hop, window=torch.hann_window(1024), return_complex=True).abs()
    n = min(spec.shape[1], mags.shape[1])
    err = (spec[:, :n] - mags[:, :n]).norm(dim=0) / mags[:, :n].norm(dim=0).clamp(min=1e-6)
    near = torch.zeros(n, dtype=torch.bool)
    for s in seams:
        near[max(0, (s - 512) // hop): min(n, (s + 512) // hop + 1)] = True
    near[:3] = False
    near[-3:] = False
    body = ~near
    body[:3] = False
    body[-3:] = False
    return float(err[near].mean()), float(err[body].mean())


def test_streaming_griffin_lim_leaves_no_seam_and_a_naive_cut_does():
    torch.manual_seed(0)
    t = torch.arange(16000 * 2) / 16000
    x = 0.3 * torch.sin(2 * torch.pi * (150 + 40 * torch.sin(2 * torch.pi * t)) * t) + 0.02 * torch.randn(len(t))
    mags = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()  # (513, 126)
    block = 10
    gl = StreamingGriffinLim(n_iter=32)
    outs, seams = [], []
    for m0 in range(0, mags.shape[1], block):
        outs.append(gl.push(mags[:, m0: m0 + block], mags[:, m0 + block: m0 + block + 4]))
        seams.append(m0 * 256)
    y = torch.cat(outs)
    assert len(y) == mags.shape[1] * 256
    seam, body = _seam_and_body_error(y, mags, seams[1:])
    # blocks reconstructed independently and butted together: the seams show
    import torchaudio

    offline = torchaudio.transforms.GriffinLim(n_fft=1024, hop_length=256, power=1.0, n_iter=32, rand_init=False)
    naive = torch.cat([torch.nn.functional.pad(offline(mags[:, m0: m0 + block]), (0, 256))[: block * 256]
                       for m0 in range(0, mags.shape[1], block)])
    naive_seam, naive_body = _seam_and_body_error(naive, mags, seams[1:])
    assert seam < 1.25 * body + 0.02, (seam, body)
    assert naive_seam > 1.5 * naive_body, (naive_seam, naive_body)
    assert seam < 0.5 * naive_seam
    _, whole = _seam_and_body_error(offline(mags), mags, [])
    assert body < whole + 0.15  # as consistent as Griffin-Lim over the whole signal, give or take


def test_window_vocoder_with_its_receptive_field_equals_the_offline_waveform():
    voc = tiny_vocoder()
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 12, 120))
    offline = voc(frames, speaker="b", style="loud")
    stream = WindowVocoderStream(lambda u: voc(u, speaker="b", style="loud"), 320, left=40, lookahead=40)
    out = []
    for s in range(0, 120, 8):
        out.append(stream.push(s, frames[s: s + 8], frames[s + 8: s + 48]))
    y = torch.cat(out)
    assert y.shape == offline.shape
    assert float((y - offline).abs().max()) < 1e-4
    # with too little context the difference is at the seams: the middle of each block stays close
    short = WindowVocoderStream(lambda u: voc(u, speaker="b", style="loud"), 320, left=2, lookahead=2)
    y2 = torch.cat([short.push(s, frames[s: s + 8], frames[s + 8: s + 10]) for s in range(0, 120, 8)])
    diff = (y2 - offline).abs().reshape(-1, 8 * 320)
    assert float(diff.max()) > 1e-3


# ---------------------------------------------------------------------------------------------- the pipeline
def test_stream_output_does_not_depend_on_chunk_size(rs_mel):
    wav = speech_like(2.5, sr=48000)
    cfg = StreamConfig(block=4, left_context=20, lookahead=6, vocoder_left=8, vocoder_lookahead=4)
    outs = []
    for sizes in ([960], [9600], random_sizes(5, 1, 12000)):
        chunks = [y for y in rs_mel.stream(iter(pieces(wav, sizes)), 48000, speaker="a", config=cfg)]
        assert all(c.dim() == 1 and c.dtype == torch.float32 for c in chunks)
        outs.append(torch.cat(chunks))
    offline = rs_mel(wav, 48000, speaker="a")
    for y in outs:
        assert y.shape == offline.shape  # the offline call's length exactly
        assert float((y - outs[0]).abs().max()) < 1e-4
    assert float(outs[0].abs().max()) > 1e-3 and float(outs[0].abs().max()) <= 1.0


def test_stream_with_whole_context_equals_the_offline_call_for_a_convolutional_vocoder(rs_gan):
    wav = speech_like(1.5)
    cfg = StreamConfig(block=4, left_context=1000, lookahead=1000, vocoder_left=200, vocoder_lookahead=200)
    y = torch.cat(list(rs_gan.stream(pieces(wav, [1600]), 16000, speaker="c", style="loud", config=cfg)))
    offline = rs_gan(wav, 16000, speaker="c", style="loud")
    assert y.shape == offline.shape
    # the offline vocoder on the streamed units (which may differ from the offline units at a near-tie of the
    # random k-means) gives the streamed waveform exactly
    s = StreamingUnitEncoder(rs_gan.encoder, block=4, left_context=1000, lookahead=1000)
    frames = torch.cat([b.final for b in s.push(wav) + s.flush()])
    same_units = rs_gan.vocoder(frames, speaker="c", style="loud").clamp(-1, 1)
    assert float((y - same_units).abs().max()) < 1e-4
    differ = int((frames != rs_gan.encoder.quantizer(rs_gan.encoder.reader(wav))).sum())
    assert differ <= 2
    if differ == 0:
        assert float((y - offline.clamp(-1, 1)).abs().max()) < 1e-4


def test_stream_output_is_lazy_and_arrives_with_bounded_lag(rs_mel):
    wav = speech_like(4.0)
    cfg = StreamConfig(block=8, left_context=20, lookahead=6, vocoder_left=8, vocoder_lookahead=4)
    pulled = []

    def source():
        for p in pieces(wav, [320]):
            pulled.append(len(p))
            yield p

    lags, out = [], 0
    for y in rs_mel.stream(source(), 16000, speaker="b", config=cfg):
        out += len(y)
        lags.append(sum(pulled) - out)  # input consumed beyond the output sent (both 16 kHz)
    steady = lags[2:-2]
    bound = (cfg.block + cfg.lookahead) * 320 + 400 + 320  # latency + one frame's tail + one input piece
    assert max(steady) <= bound and min(steady) >= 0
    assert len(lags) > 20


def test_voice_is_chosen_from_the_first_seconds_then_held(rs_gan):
    wav = speech_like(3.0)
    enc = rs_gan.encoder(wav, sample_rate=16000)
    voiced = rs_gan.vocoder(enc["units"], speaker=2, durations=enc["durations"])
    cfg = StreamConfig(block=4, left_context=30, lookahead=6, vocoder_left=30, vocoder_lookahead=6,
                       match_seconds=1.0)
    head = voiced[:16000]
    e = rs_gan.encode(head, 16000)
    chosen = rs_gan.match_speaker(head, 16000, e["units"], e["durations"])
    kept = torch.cat(list(rs_gan.stream(pieces(voiced, [700]), 16000, config=cfg)))
    given = torch.cat(list(rs_gan.stream(pieces(voiced, [700]), 16000, speaker=chosen, config=cfg)))
    assert chosen == 2
    assert torch.equal(kept, given)


def test_stream_refuses_bad_input_with_clear_errors(rs_mel, rs_gan):
    cfg = StreamConfig(block=4, left_context=10, lookahead=4, vocoder_left=4, vocoder_lookahead=4)
    ok = speech_like(0.5)
    with pytest.raises(PipelineError, match="chunk 1 must be 1-D"):
        list(rs_mel.stream([ok, torch.stack([ok, ok])], 16000, speaker="a", config=cfg))
    bad = ok.clone()
    bad[10] = float("nan")
    with pytest.raises(PipelineError, match="chunk 2 contains NaN"):
        list(rs_mel.stream([ok, ok, bad], 16000, speaker="a", config=cfg))
    with pytest.raises(PipelineError, match="no input"):
        list(rs_mel.stream([], 16000, speaker="a", config=cfg))
    with pytest.raises(PipelineError, match="too short"):
        list(rs_mel.stream([ok[:100]], 16000, speaker="a", config=cfg))
    with pytest.raises(PipelineError, match="multiple of 4"):
        rs_mel.stream([ok], 16000, speaker="a", config=StreamConfig(block=6))
    with pytest.raises(PipelineError, match="vocoder_lookahead"):
        rs_mel.stream([ok], 16000, config=StreamConfig(lookahead=2, vocoder_lookahead=4))
    with pytest.raises(PipelineError, match="unknown speaker"):
        list(rs_mel.stream([ok], 16000, speaker="zz", config=cfg))
    with pytest.raises(PipelineError, match="dur_prediction"):
        Resynthesizer(tiny_encoder(), tiny_vocoder(), dur_prediction=True).stream([ok], 16000)


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, rs_mel):
    d = tmp_path_factory.mktemp("stream_model")
    rs_mel.encoder.save_pretrained(d / "encoder")
    rs_mel.vocoder.save_pretrained(d / "vocoder")
    return d


def test_cli_stream_file_to_file_matches_the_python_api(model_dir, tmp_path, rs_mel):
    from speechkit.cli.main import main

    wav = speech_like(2.0, sr=22050)
    io.save(tmp_path / "in.wav", wav, 22050, subtype="FLOAT")
    assert main(["resynth", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "--model", str(model_dir),
                 "--stream", "--chunk-ms", "30", "--speaker", "b", "--block-ms", "80", "--lookahead-ms", "120"]) == 0
    y, sr = io.load(tmp_path / "out.wav")
    cfg = StreamConfig(block=4, lookahead=6, vocoder_lookahead=6)
    ref = torch.cat(list(rs_mel.stream(pieces(wav, [4410]), 22050, speaker="b", config=cfg)))
    assert sr == 16000 and y.shape == ref.shape
    assert float((y - ref).abs().max()) < 2 / 32768  # 16-bit PCM


def test_cli_stream_raw_pcm_stdin_to_stdout(model_dir, monkeypatch, rs_mel):
    from speechkit.cli.main import main

    wav = speech_like(1.5)
    pcm = (wav.numpy() * 32767).round().astype("<i2").tobytes()
    stdin, stdout = pyio.BytesIO(pcm), pyio.BytesIO()
    monkeypatch.setattr(sys, "stdin", pyio.TextIOWrapper(stdin))
    monkeypatch.setattr(sys, "stdout", pyio.TextIOWrapper(stdout))
    assert main(["resynth", "-", "-o", "-", "--model", str(model_dir), "--stream", "--rate", "16000",
                 "--speaker", "a", "--chunk-ms", "20"]) == 0
    sys.stdout.flush()
    got = torch.from_numpy(np.frombuffer(stdout.getvalue(), dtype="<i2").astype(np.float32) / 32768)
    src = torch.cat(list(read_pcm16(pyio.BytesIO(pcm), 320)))
    ref = torch.cat(list(rs_mel.stream(pieces(src, [320]), 16000, speaker="a")))
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) < 2 / 32768


def test_cli_stream_errors(model_dir, tmp_path, capsys):
    from speechkit.cli.main import main

    assert main(["resynth", "-", "-o", str(tmp_path / "o.wav"), "--model", str(model_dir), "--stream"]) == 1
    assert "--rate" in capsys.readouterr().err
    assert main(["resynth", "-", "-o", "-", "--model", str(model_dir)]) == 1
    assert "needs --stream" in capsys.readouterr().err
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    assert main(["resynth", str(tmp_path / "bad.wav"), "-o", str(tmp_path / "o.wav"), "--model", str(model_dir),
                 "--stream"]) == 1
    assert "bad.wav: not a readable audio file" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_vocoder_state_stays_bounded_on_a_long_stream():
    from speechkit.vocoders.streaming import UnitMelGriffinLimStream

    voc = tiny_unit_mel()
    stream = UnitMelGriffinLimStream(voc, "a", None, left=8, lookahead=4, gl_lookahead=6, gl_block=5, gl_iters=2)
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 12, 1200))
    seen = []
    for s in range(0, 1200, 8):
        y = stream.push(s, frames[s: s + 8], frames[s + 8: s + 12])
        assert y.shape == (8 * 320,) and torch.isfinite(y).all()
        seen.append((len(stream._history), stream.gl._tail.numel(), stream.gl._guess.numel()))
    assert max(h for h, _, _ in seen) <= 8 + 8 + 4   # the left context and a block, however long the stream
    assert {t for _, t, _ in seen} == {1024 - 256}
    assert max(g for _, _, g in seen) <= (6 + 4) * 256
