"""Which half of a Vocos's spectrum loses quality: its magnitude or its phase.

Each utterance's true log-mel goes through the Vocos head (``VocosGenerator.spectrum``); the head's own STFT of the
audio (``ISTFT.analyse``) gives the true spectrum on the same frames. Four rows, each through the head's inverse
STFT and scored by DNSMOS and the F0 metrics against the audio:

- ``vocos``: the predicted spectrum as it is (copy synthesis);
- ``vocos magnitude, true phase`` and ``true magnitude, vocos phase``: one half swapped in;
- ``true magnitude, random phase``: the floor, phase drawn uniformly (seed 0).

    .venv/bin/python eval/vocoder_spectrum_swap.py --data data/mini_expresso_120 --split dev --count 24 \\
        --vocos checkpoints/default/vocoder/mel_vocoder -o exp/spectrum_swap
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROWS = ("vocos", "vocos magnitude, true phase", "true magnitude, vocos phase", "true magnitude, random phase")
KEYS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "vde", "voiced_ref", "voiced_hyp")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="mini-Expresso root")
    p.add_argument("--split", default="dev", choices=("dev", "test"))
    p.add_argument("--count", type=int, default=24, help="utterances (round-robin over speakers)")
    p.add_argument("--vocos", required=True, help="a Vocos folder")
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args()
    from eval.tokenizer_benchmark import round_robin, split_files
    from speechkit.audio import io
    from speechkit.metrics.folder import FolderEvalConfig, evaluate_folder
    from speechkit.vocoders import VocosVocoder
    from speechkit.vocoders.hifigan.losses import MelSpectrogram

    voc = VocosVocoder.from_pretrained(args.vocos)
    m = voc.config.mel
    mel = MelSpectrogram(m.sample_rate, m.n_fft, m.num_mels, m.hop_length, m.win_length, m.fmin, m.fmax)
    head = voc.generator
    g = torch.Generator().manual_seed(0)
    for stem, path, _, _ in round_robin(split_files(args.data, args.split), args.count):
        w = io.load(path, sample_rate=m.sample_rate)[0]
        y = (w / w.abs().max().clamp(min=1e-4) * 0.95)[None, : len(w) // m.hop_length * m.hop_length]
        with torch.inference_mode():
            true, pred = head.istft.analyse(y), head.spectrum(mel(y))
            unit = lambda s: s / s.abs().clamp(min=1e-8)   # noqa: E731
            noise = torch.polar(torch.ones_like(true.real), 2 * torch.pi * torch.rand(true.shape, generator=g))
            specs = dict(zip(ROWS, (pred, pred.abs() * unit(true), true.abs() * unit(pred), true.abs() * noise),
                             strict=True))
            io.save(args.out / "originals" / f"{stem}.wav", y[0].numpy(), m.sample_rate)
            for row, s in specs.items():
                x = head.istft(s)[0]
                io.save(args.out / row.replace(", ", "_").replace(" ", "-") / f"{stem}.wav",
                        (x / x.abs().max().clamp(min=1.0)).numpy(), m.sample_rate)
    results = {}
    for row in ("originals",) + ROWS:
        rep = evaluate_folder(args.out / row.replace(", ", "_").replace(" ", "-"),
                              ref_dir=None if row == "originals" else args.out / "originals",
                              config=FolderEvalConfig(metrics=("dnsmos",) if row == "originals" else ("dnsmos", "f0"),
                                                      media=False))
        results[row] = {k: rep["summary"][k] for k in KEYS if k in rep["summary"]}
        print(row, {k: round(v, 3) for k, v in results[row].items()}, flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
