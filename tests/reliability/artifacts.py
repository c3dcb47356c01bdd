"""Tiny valid files of every format speechkit loads, each with the public loader that reads it.

The reliability suite corrupts copies of these (:mod:`tests.reliability.faults`) and checks what the loader does.
Everything is built at test time from random weights, except the official-format vocoder checkpoints
(``tests/data/vocoders``, documented there) and the default bundle (``checkpoints/default``), which are copied.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
VOCODER_DATA = REPO / "tests" / "data" / "vocoders"
DEFAULT = REPO / "checkpoints" / "default"


@dataclass
class Artifact:
    """A valid file or folder, the files in it worth corrupting, and the public call that loads it."""

    name: str
    path: Path
    targets: list[str]  # files (relative to ``path`` for a folder; ``""`` = ``path`` itself) to corrupt
    load: Callable[[Path], object]


def _fairseq_hubert(root: Path) -> Artifact:
    from speechkit.units import HubertFeatureReader
    from tests.unit.units.fairseq_format import write_fairseq_checkpoint

    p = root / "hubert_base.pt"
    write_fairseq_checkpoint(p, "base")
    return Artifact("fairseq HuBERT .pt", p, [""], lambda q: HubertFeatureReader.from_pretrained(q, layer=2))


def _hf_hubert(root: Path) -> Artifact:
    from transformers import HubertConfig, HubertModel

    from speechkit.units import HubertFeatureReader

    torch.manual_seed(0)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=4)
    d = root / "hf_hubert"
    HubertModel(cfg).save_pretrained(d)
    return Artifact("HF HuBERT folder", d, ["config.json", "model.safetensors"],
                    lambda q: HubertFeatureReader.from_pretrained(q, layer=2))


def _km_bin(root: Path) -> Artifact:
    import joblib
    from sklearn.cluster import KMeans

    from speechkit.units import KMeansQuantizer

    km = KMeans(n_clusters=4, n_init=1, random_state=0).fit(np.random.default_rng(0).normal(size=(40, 8)))
    p = root / "km.bin"
    joblib.dump(km, p)
    return Artifact("textlesslib km.bin", p, [""], KMeansQuantizer.from_pretrained)


def _kmeans_safetensors(root: Path) -> Artifact:
    from speechkit.units import KMeansQuantizer

    p = root / "kmeans.safetensors"
    KMeansQuantizer(torch.randn(4, 8)).save(p)
    return Artifact("k-means .safetensors", p, [""], KMeansQuantizer.from_pretrained)


def _centroids_npy(root: Path) -> Artifact:
    from speechkit.units import KMeansQuantizer

    p = root / "centroids.npy"
    np.save(p, np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32))
    return Artifact("k-means .npy", p, [""], KMeansQuantizer.from_pretrained)


def _official_vocoder(root: Path) -> Artifact:
    from speechkit.vocoders import CodeHiFiGANVocoder

    d = root / "official_vocoder"
    shutil.copytree(VOCODER_DATA / "expresso", d, ignore=shutil.ignore_patterns("reference.npz"))
    return Artifact("CodeHiFiGAN g_* + config", d, ["g_00000000", "config.json", "speakers.txt", "styles.txt"],
                    lambda q: CodeHiFiGANVocoder.from_pretrained(q / "g_00000000"))


def _default_part(root: Path, part: str) -> Artifact:
    from speechkit.ulm import UnitLM
    from speechkit.units import SpeechEncoder
    from speechkit.vocoders.loading import UnitVocoder

    d = root / f"default_{part}"
    shutil.copytree(DEFAULT / part, d)
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    load = {"encoder": SpeechEncoder.from_pretrained, "ulm": UnitLM.from_pretrained,
            "vocoder": UnitVocoder.from_pretrained}
    title = {"encoder": "encoder folder (HuBERT + k-means)", "ulm": "unit-LM folder", "vocoder": "vocoder folder"}
    return Artifact(title[part], d, files, load[part])


def _vdtts(root: Path) -> Artifact:
    from speechkit.vdtts.inference import VDTTS

    d = root / "vdtts"
    shutil.copytree(REPO / "checkpoints" / "vdtts", d, ignore=shutil.ignore_patterns("text_only", "README.md"))
    return Artifact("VDTTS folder", d, ["config.json", "model.safetensors"], VDTTS.from_pretrained)


def _training_state(root: Path) -> Artifact:
    from speechkit.train.checkpoint import load_training_state, save_training_state

    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    d = root / "run"
    save_training_state(d, step=3, model=model, config={"lr": 1e-3}, optimizers={"adamw": opt})
    return Artifact("training checkpoint", d, ["checkpoint_last.pt"], load_training_state)


def _audio(root: Path, ext: str) -> Artifact:
    from speechkit.audio import io

    rng = np.random.default_rng(0)
    wav = (0.3 * np.sin(np.arange(8000) / 16000 * 2 * np.pi * 220) + 0.01 * rng.normal(size=8000)).astype(np.float32)
    p = io.save(root / f"tone.{ext}", wav, 16000)
    return Artifact(f"audio .{ext}", p, [""], lambda q: io.load(q, sample_rate=16000))


def _video(root: Path) -> Artifact:
    from speechkit.audio import video

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(10, 32, 32, 3), dtype=np.uint8)
    audio = (0.1 * rng.normal(size=6400)).astype(np.float32)
    p = video.write_video(root / "clip.mp4", frames, 25, audio=audio, sample_rate=16000)
    return Artifact("video .mp4", p, [""], video.read_video)


BUILDERS: dict[str, Callable[[Path], Artifact]] = {
    "fairseq_hubert": _fairseq_hubert,
    "hf_hubert": _hf_hubert,
    "km_bin": _km_bin,
    "kmeans_safetensors": _kmeans_safetensors,
    "centroids_npy": _centroids_npy,
    "official_vocoder": _official_vocoder,
    "encoder": lambda r: _default_part(r, "encoder"),
    "unit_lm": lambda r: _default_part(r, "ulm"),
    "vocoder": lambda r: _default_part(r, "vocoder"),
    "vdtts": _vdtts,
    "training_state": _training_state,
    "wav": lambda r: _audio(r, "wav"),
    "flac": lambda r: _audio(r, "flac"),
    "video": _video,
}


def json_text(obj) -> str:
    return json.dumps(obj, indent=1)
