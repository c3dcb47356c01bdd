"""Malicious files: pickles that would run code, archives that would write outside their folder, headers that claim
more than the file holds. Each must be refused (a SpeechkitError naming the file) before any code runs or any large
allocation is made."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from speechkit.errors import SpeechkitError
from tests.reliability.artifacts import DEFAULT, VOCODER_DATA
from tests.reliability.faults import record_outcome, safetensors_with_header_size

MARKER = "speechkit_pwned"


class Evil:
    """Unpickling this runs a shell command that creates ``MARKER`` in the working directory."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / MARKER).exists(), "a pickle ran code"


def refused(call, path: Path) -> str:
    with pytest.raises(SpeechkitError) as e:
        call()
    assert str(path) in str(e.value), f"the error does not name {path}: {e.value}"
    return str(e.value)


# ---------------------------------------------------------------------------------------- pickles that run code
def _fairseq_pt(d: Path) -> tuple[Path, object]:
    from speechkit.units import HubertFeatureReader

    p = d / "hubert.pt"
    torch.save({"cfg": {"model": {}}, "model": {}, "task_state": Evil()}, p)
    return p, lambda: HubertFeatureReader.from_pretrained(p)


def _hf_bin(d: Path) -> tuple[Path, object]:
    from speechkit.units import HubertFeatureReader

    folder = d / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "hubert", "conv_dim": [16], "conv_kernel": [10],
                                                    "conv_stride": [5], "hidden_size": 32, "num_hidden_layers": 1,
                                                    "num_attention_heads": 4, "intermediate_size": 64,
                                                    "num_conv_pos_embeddings": 16,
                                                    "num_conv_pos_embedding_groups": 4}))
    torch.save({"w": Evil()}, folder / "pytorch_model.bin")
    return folder / "pytorch_model.bin", lambda: HubertFeatureReader.from_pretrained(folder)


def _km_bin(d: Path) -> tuple[Path, object]:
    import joblib

    from speechkit.units import KMeansQuantizer

    p = d / "km.bin"
    joblib.dump({"cluster_centers_": Evil()}, p)
    return p, lambda: KMeansQuantizer.from_pretrained(p)


def _npy(d: Path) -> tuple[Path, object]:
    from speechkit.units import KMeansQuantizer

    p = d / "centroids.npy"
    np.save(p, np.array([Evil()], dtype=object), allow_pickle=True)
    return p, lambda: KMeansQuantizer.from_pretrained(p)


def _vocoder_g(d: Path) -> tuple[Path, object]:
    from speechkit.vocoders import CodeHiFiGANVocoder

    p = d / "g_00000001"
    torch.save({"generator": Evil()}, p)
    return p, lambda: CodeHiFiGANVocoder.from_pretrained(p, config_path=VOCODER_DATA / "base" / "config.json")


def _training_state(d: Path) -> tuple[Path, object]:
    from speechkit.train.checkpoint import load_training_state

    p = d / "checkpoint_last.pt"
    torch.save({"model": {}, "step": 1, "extra": Evil()}, p)
    return p, lambda: load_training_state(p)


def _unit_lm_bin(d: Path) -> tuple[Path, object]:
    from speechkit.ulm import UnitLM

    folder = d / "ulm"
    shutil.copytree(DEFAULT / "ulm", folder)
    (folder / "model.safetensors").unlink()
    torch.save({"model.embed_tokens.weight": Evil()}, folder / "pytorch_model.bin")
    return folder, lambda: UnitLM.from_pretrained(folder)


def _vdtts_features(d: Path) -> tuple[Path, object]:
    from speechkit.train.vdtts import load_features

    p = d / "features.npz"
    np.savez(p, config=np.array([Evil()], dtype=object))
    return p, lambda: load_features(p)


PICKLE_ENTRIES = {"fairseq HuBERT .pt": _fairseq_pt, "HF pytorch_model.bin": _hf_bin, "km.bin (joblib)": _km_bin,
                  ".npy centroids": _npy, "vocoder g_*": _vocoder_g, "training checkpoint": _training_state,
                  "unit-LM pytorch_model.bin": _unit_lm_bin, "VDTTS cached features .npz": _vdtts_features}


@pytest.mark.parametrize("entry", sorted(PICKLE_ENTRIES))
def test_pickles_never_run_code(sandbox, entry):
    path, load = PICKLE_ENTRIES[entry](sandbox)
    refused(load, path)
    record_outcome("malicious files", f"code-running pickle: {entry}")


def test_the_payload_would_run_if_unpickled_plainly(sandbox):
    """Proves the fixture: the same file, loaded without speechkit's guards, does run the command."""
    import pickle

    pickle.loads(pickle.dumps(Evil()))
    assert (sandbox / MARKER).exists()
    (sandbox / MARKER).unlink()


# ------------------------------------------------------------------------------------------- archives and cards
def _card(tmp: Path, monkeypatch, archive: bytes) -> str:
    import hashlib

    cards, cache = tmp / "cards", tmp / "cache"
    cards.mkdir()
    (cache / "files").mkdir(parents=True)
    (cache / "files" / "bundle.zip").write_bytes(archive)
    digest = hashlib.sha256(archive).hexdigest()
    (cards / "evil.yaml").write_text(f"- name: evil\n  kind: bundle\n  unpack: zip\n  files:\n"
                                     f"    folder: {{file: bundle.zip, sha256: '{digest}'}}\n")
    monkeypatch.setenv("SPEECHKIT_CARDS", str(cards))
    monkeypatch.setenv("SPEECHKIT_CACHE", str(cache))
    monkeypatch.setenv("SPEECHKIT_OFFLINE", "1")
    return "evil"


def _zip(members: list[tuple[str, bytes, int | None]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            z.writestr(info, data)
    return buf.getvalue()


@pytest.mark.parametrize("member,mode", [("../escaped.txt", None), ("/tmp/speechkit_abs_escape.txt", None),
                                         ("ok/../../escaped.txt", None), ("link", stat.S_IFLNK | 0o777)])
def test_zip_cards_cannot_write_outside_their_folder(tmp_path, monkeypatch, member, mode):
    from speechkit import hub

    name = _card(tmp_path, monkeypatch, _zip([("ok/config.json", b"{}", None), (member, b"/etc/passwd", mode)]))
    archive = tmp_path / "cache" / "files" / "bundle.zip"
    refused(lambda: hub.fetch(name), archive)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/speechkit_abs_escape.txt").exists()
    assert not (tmp_path / "cache" / "unpacked" / "evil").exists(), "a refused archive left a partial folder"
    record_outcome("malicious files", "zip card: '..', absolute path, symlink")


@pytest.mark.parametrize("file", ["../../outside.bin", "/etc/passwd", "a/../../b"])
def test_card_file_names_cannot_leave_the_cache(tmp_path, monkeypatch, file):
    from speechkit import hub

    (tmp_path / "cards").mkdir()
    p = tmp_path / "cards" / "evil.yaml"
    p.write_text(f"- name: evil\n  kind: dense\n  files:\n    checkpoint: {{file: '{file}'}}\n")
    monkeypatch.setenv("SPEECHKIT_CARDS", str(tmp_path / "cards"))
    assert "plain relative path" in refused(lambda: hub.fetch("evil", offline=True), p)
    record_outcome("malicious files", "card file name outside the cache")


# ------------------------------------------------------------------------------------------- oversized headers
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _safetensors_entries(d: Path) -> dict[str, tuple[Path, object]]:
    from speechkit.train.checkpoint import load_pretrained
    from speechkit.ulm import UnitLM
    from speechkit.units import HubertFeatureReader, KMeansQuantizer
    from speechkit.vdtts.inference import VDTTS
    from speechkit.vocoders.loading import UnitVocoder

    out = {}
    for key, src, load in [("unit LM", DEFAULT / "ulm", UnitLM.from_pretrained),
                           ("vocoder", DEFAULT / "vocoder", UnitVocoder.from_pretrained),
                           ("HuBERT", DEFAULT / "encoder" / "hubert", HubertFeatureReader.from_pretrained),
                           ("VDTTS", DEFAULT.parent / "vdtts", VDTTS.from_pretrained),
                           ("model folder", DEFAULT / "vocoder", load_pretrained)]:
        folder = d / key.replace(" ", "_")
        shutil.copytree(src, folder, ignore=shutil.ignore_patterns("text_only"))
        out[key] = (folder, folder / "model.safetensors", load)
    km = d / "kmeans.safetensors"
    out["k-means"] = (km, km, KMeansQuantizer.from_pretrained)
    return out


@pytest.mark.parametrize("claim", [2**40, 2**63, 200_000_000])
def test_safetensors_header_claiming_terabytes_is_refused_without_allocating(tmp_path, claim):
    for key, (target, weights, load) in _safetensors_entries(tmp_path).items():
        weights.write_bytes(safetensors_with_header_size(claim))
        before = _peak_mb()
        refused(lambda: load(target), target)  # noqa: B023
        assert _peak_mb() - before < 200, f"{key}: {_peak_mb() - before:.0f} MB allocated for a lying header"
        record_outcome("malicious files", "safetensors header claiming up to 2^63 bytes")


def _wav_claiming(frames: int, data: bytes, channels: int = 1) -> bytes:
    import struct

    fmt = struct.pack("<HHIIHH", 1, channels, 16000, 16000 * 2 * channels, 2 * channels, 16)
    size = min(frames * 2 * channels, 0xFFFFFFFF)
    return (b"RIFF" + struct.pack("<I", min(size + 36, 0xFFFFFFFF)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size) + data)


def _flac_claiming(tmp: Path, frames: int) -> Path:
    import struct

    import soundfile as sf

    p = tmp / "claims.flac"
    sf.write(p, np.zeros(1600, np.float32), 16000)
    b = bytearray(p.read_bytes())
    (v,) = struct.unpack(">Q", bytes(b[18:26]))  # STREAMINFO: rate(20) channels(3) bits(5) total samples(36)
    b[18:26] = struct.pack(">Q", (v & ~((1 << 36) - 1)) | frames)
    p.write_bytes(bytes(b))
    return p


@pytest.mark.parametrize("kind", ["wav", "flac"])
def test_audio_claiming_2_31_frames_is_refused_or_read_as_what_it_holds(tmp_path, kind):
    from speechkit.audio import io as audio_io

    if kind == "wav":
        p = tmp_path / "claims.wav"
        p.write_bytes(_wav_claiming(2**31, b"\x01\x00" * 1600))
    else:
        p = _flac_claiming(tmp_path, 2**31)
    before = _peak_mb()
    if kind == "wav":  # libsndfile clamps a WAV's data size to the file: what is there is read, nothing more
        assert audio_io.load(p)[0].numel() == 1600
    else:  # a FLAC header's count cannot be checked against the file size: refused from the header
        assert "SPEECHKIT_MAX_AUDIO_SECONDS" in refused(lambda: audio_io.load(p), p)
    assert _peak_mb() - before < 200
    record_outcome("malicious files", "audio header claiming 2^31 frames")
