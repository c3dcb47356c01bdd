"""One decision for every bf16 / fp16 fast path: taken where the hardware computes in the type, else fp32 with one
warning line. The missing capability is simulated; the real path runs where this CPU has it."""

from __future__ import annotations

import logging
import platform

import numpy as np
import pytest
import torch

from speechkit import precision
from speechkit.precision import fast_path_missing, resolve_precision

AVX2_ONLY = {"model": "AMD EPYC (simulated)", "capability": "AVX2", "flags": ["avx2"], "threads": 1}
AMX = {"model": "Intel Xeon (simulated)", "capability": "AVX512", "threads": 1,
       "flags": ["avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16"]}


@pytest.fixture
def cpu(monkeypatch):
    """Makes the fast-path decision see a given CPU; returns a setter."""
    monkeypatch.setattr(precision, "_warned", set())
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")

    def set_cpu(info: dict, probe_error: str | None = None) -> None:
        monkeypatch.setattr(precision, "cpu_info", lambda: dict(info))
        monkeypatch.setattr(precision, "_cpu_kernel_runs", lambda dtype: probe_error)
    return set_cpu


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "speechkit.precision"]


def test_missing_kernels_fall_back_to_fp32_with_one_warning_line(cpu, caplog):
    cpu(AVX2_ONLY)
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        assert resolve_precision("bf16", "cpu", what="vocoder") == "fp32"
        assert resolve_precision("bf16", "cpu", what="vocoder") == "fp32"  # said once per component and reason
        assert resolve_precision("fp16", "cpu", what="vocoder") == "fp32"
        assert resolve_precision("fp32", "cpu", what="vocoder") == "fp32"
    said = _warnings(caplog)
    assert len(said) == 2 and all("\n" not in m for m in said)
    assert "vocoder: bf16 requested" in said[0] and "AMD EPYC (simulated)" in said[0] and "AVX512-BF16" in said[0]
    assert said[0].endswith("using fp32") and "fp16" in said[1]


def test_capable_cpu_takes_the_fast_path_unless_its_kernels_fail(cpu, caplog):
    cpu(AMX)
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        assert resolve_precision("bf16", "cpu", what="x") == "bf16"
        assert resolve_precision("fp16", "cpu", what="x") == "fp16"
    assert _warnings(caplog) == []
    cpu(AMX, probe_error="mkldnn_convolution: bf16 path needs the cpu support avx_ne_convert")
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        assert resolve_precision("bf16", "cpu", what="x") == "fp32"
    assert "kernels fail (mkldnn_convolution" in _warnings(caplog)[0]


def test_avx512_without_bf16_is_emulation_so_fp32():
    info = dict(AMX, flags=["avx2", "avx512f"])
    with pytest.MonkeyPatch.context() as m:
        m.setattr(precision, "cpu_info", lambda: info)
        m.setattr(platform, "machine", lambda: "x86_64")
        assert "no bf16 arithmetic" in fast_path_missing("bf16", "cpu")


def test_bad_precision_names_the_rule():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16. Found 'int8'"):
        resolve_precision("int8", what="x")
    with pytest.raises(ValueError, match="autocast dtype must be"):
        precision.autocast_dtype(torch.int8, what="x")


def test_real_cpu_decision_agrees_with_its_flags():
    info = precision.cpu_info()
    assert info["capability"] == torch.backends.cpu.get_cpu_capability() and info["threads"] >= 1
    has_bf16 = bool({"avx512_bf16", "amx_bf16", "amx_tile"} & set(info["flags"]))
    if platform.machine() == "x86_64":
        assert (fast_path_missing("bf16") is None) == (has_bf16 and precision._cpu_kernel_runs(torch.bfloat16)
                                                       is None)
    line = precision.machine_line()
    assert info["capability"] in line and f"torch {info['threads']} threads" in line


def test_vocoder_falls_back_and_gives_the_fp32_waveform(cpu, caplog):
    from speechkit.vocoders import CodeHiFiGANVocoder
    from speechkit.vocoders.hifigan.factory import build_code_hifigan, code_hifigan_v1

    cpu(AVX2_ONLY)
    torch.manual_seed(0)
    cfg = code_hifigan_v1(20)
    cfg.generator.upsample_initial_channel = 32
    voc = CodeHiFiGANVocoder(build_code_hifigan(cfg), cfg)
    units = torch.randint(0, 20, (30,))
    fp32 = voc(units)
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        voc.set_precision("bf16")
    assert voc.precision == "fp32" and voc.generator.conv_pre.weight.dtype == torch.float32
    assert torch.equal(voc(units), fp32)
    assert len(_warnings(caplog)) == 1 and "CodeHiFiGANVocoder.set_precision" in _warnings(caplog)[0]


def test_hubert_fast_path_falls_back_to_the_exact_features(cpu, caplog):
    from speechkit.units.hubert import HubertConfig, HubertFeatureReader, build_hubert

    cpu(AVX2_ONLY)
    torch.manual_seed(0)
    hcfg = HubertConfig(conv_layers=[(16, 10, 5), (16, 3, 2), (16, 2, 2)], embed_dim=16, num_layers=2, num_heads=2,
                        ffn_dim=32, conv_pos=8, conv_pos_groups=4)
    reader = HubertFeatureReader(build_hubert(hcfg), hcfg, layer=2)
    wav = torch.randn(4000)
    exact = reader(wav)
    reader.autocast = torch.bfloat16
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        fast = reader(wav)
    assert reader.autocast is None and torch.equal(fast, exact)
    assert "HuBERT fast path" in _warnings(caplog)[0]


@pytest.mark.skipif(fast_path_missing("bf16") is not None, reason="this CPU has no bf16 arithmetic")
def test_hubert_fast_path_runs_in_bf16_where_the_cpu_has_it():
    from speechkit.units.hubert import HubertConfig, HubertFeatureReader, build_hubert

    torch.manual_seed(0)
    hcfg = HubertConfig(conv_layers=[(16, 10, 5), (16, 3, 2), (16, 2, 2)], embed_dim=16, num_layers=2, num_heads=2,
                        ffn_dim=32, conv_pos=8, conv_pos_groups=4)
    reader = HubertFeatureReader(build_hubert(hcfg), hcfg, layer=2)
    wav = torch.randn(4000)
    exact = reader(wav)
    reader.autocast = torch.bfloat16
    fast = reader(wav)
    assert reader.autocast == torch.bfloat16
    diff = float((fast - exact).abs().max())
    assert 0 < diff < 0.05 * float(exact.abs().max())


def test_training_precision_falls_back(cpu, caplog):
    from speechkit.train.ulm import _autocast

    cpu(AVX2_ONLY)
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        ctx = _autocast("bf16", torch.device("cpu"))
        with ctx:
            y = torch.randn(4, 4) @ torch.randn(4, 4)
    assert y.dtype == torch.float32 and "LM training" in _warnings(caplog)[0]
    cpu(AMX)
    with _autocast("bf16", torch.device("cpu")):
        assert (torch.randn(4, 4) @ torch.randn(4, 4)).dtype == torch.bfloat16
    # auto means bf16 only on GPUs that have it
    with _autocast("auto", torch.device("cpu")):
        assert (torch.randn(4, 4) @ torch.randn(4, 4)).dtype == torch.float32


def test_vdtts_set_precision_falls_back(cpu, caplog):
    from speechkit.vdtts.config import VDTTSConfig
    from speechkit.vdtts.factory import build_vdtts
    from speechkit.vdtts.inference import VDTTS

    cpu(AVX2_ONLY)
    cfg = VDTTSConfig(speakers=["a"], phonemes=["p", "a"])
    tts = VDTTS(build_vdtts(cfg), cfg)
    with caplog.at_level(logging.WARNING, logger="speechkit.precision"):
        assert tts.set_precision("bf16").precision == "fp32"
    assert "VDTTS" in _warnings(caplog)[0]
    cpu(AMX)
    assert tts.set_precision("bf16").precision == "bf16"
    np.testing.assert_equal(tts.set_precision("fp32").precision, "fp32")
