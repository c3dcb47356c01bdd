#!/usr/bin/env python
"""Units of perturbed copies of the training speech, paired with the clean audio: data for a unit-to-mel decoder
that has to speak from the noisier units of voices and rooms it never heard.

    .venv/bin/python data_prep/robust_units.py --encoder checkpoints/default/encoder \\
        --units exp/default/k200/units.jsonl --list data/mini_expresso_120/splits/train.txt \\
        --copies 2 -o exp/robust/units.jsonl

For every record of ``--units`` whose audio is in ``--list``, ``--copies`` perturbed versions of its audio are
encoded with ``--encoder`` (the encoder that made ``--units``); each becomes a record with the *clean* audio path,
so ``speechkit train unit_mel`` learns perturbed units -> clean log-mel. The output holds the clean records first
(all of them, so the validation split stays as it was), then the perturbed ones (id ``ID~pN``).

A perturbation is a voice change, then recording conditions, both drawn per copy from a seeded generator:

* voice (``--speed``): the audio resampled by a factor ``s`` (log-uniform in the range), which moves pitch and
  formants together, as a longer or shorter vocal tract does (speed perturbation, Ko et al. 2015); the units of
  the resampled audio are put back on the clean frame grid by scaling their durations by ``s`` (boundaries rounded
  to the nearest frame, so a unit is at most half a frame off);
* recording conditions (``--degrade``: probability of one :func:`speechkit.audio.augment.degrade` chain: rooms,
  noise, telephone and band limits, levels, clipping); these keep every sample in place.

The job resumes: records already in the output are kept and skipped (a torn last line from a killed run is
dropped), so a re-run adds only what is missing and never duplicates a record.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import zlib
from pathlib import Path

import torch

from speechkit.audio import io
from speechkit.audio.augment import degrade
from speechkit.data.manifest import UnitRecord, read_units_jsonl
from speechkit.units import SpeechEncoder, regrid

SUFFIX = "~p"
RATE_STEP = 200


def perturb(wav: torch.Tensor, sample_rate: int, rng: random.Random, speed: tuple[float, float],
            p_degrade: float) -> tuple[torch.Tensor, float, list[str]]:
    """One perturbed copy of ``wav``: resampled by a factor drawn log-uniformly from ``speed`` (1 = unchanged),
    then, with probability ``p_degrade``, one chain of recording conditions. Returns the copy (at ``sample_rate``),
    the factor and the conditions' names."""
    lo, hi = speed
    s = math.exp(rng.uniform(math.log(lo), math.log(hi))) if hi > lo else lo
    # the new rate on a 200 Hz grid: a large common divisor keeps the polyphase resampler's kernel small
    new_rate = int(round(sample_rate / s / RATE_STEP)) * RATE_STEP
    x = wav
    if new_rate != sample_rate:
        x = io.resample(wav, sample_rate, new_rate)  # played at sample_rate: sample_rate / new_rate times faster
    s = sample_rate / new_rate
    chain: list[str] = []
    if rng.random() < p_degrade:
        x, chain = degrade(x, sample_rate, rng)
    return x, s, chain


def _existing(path: Path) -> set[str]:
    """Ids already written; a torn last line (a killed run) is cut off the file."""
    from speechkit.utils.files import jsonl_ids

    return jsonl_ids(path, "units record")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True, help="the speech encoder folder that made --units")
    p.add_argument("--units", required=True, type=Path, help="units jsonl of the clean corpus")
    p.add_argument("--list", type=Path, default=None, help="perturb only records whose audio stem is listed "
                   "(the training split); default: all")
    p.add_argument("--audio-root", type=Path, default=None, help="folder relative audio paths of --units are under")
    p.add_argument("--copies", type=int, default=2, help="perturbed copies per record")
    p.add_argument("--speed", default="0.8,1.25", help="range of the resampling factor (1,1: no voice change)")
    p.add_argument("--degrade", type=float, default=0.5, help="probability of recording conditions per copy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, type=Path)
    a = p.parse_args(argv)
    try:
        lo, hi = (float(v) for v in a.speed.split(","))
    except ValueError:
        p.error(f"--speed: two numbers 'LOW,HIGH' expected. Found {a.speed!r}")
    if not 0.5 <= lo <= hi <= 2.0:
        p.error(f"--speed: 0.5 <= LOW <= HIGH <= 2 required. Found {a.speed!r}")
    if a.copies < 0 or not 0.0 <= a.degrade <= 1.0:
        p.error("--copies >= 0 and 0 <= --degrade <= 1 required")

    records = read_units_jsonl(a.units)
    if any(SUFFIX in r.id for r in records):
        p.error(f"{a.units}: already holds perturbed records (ids with {SUFFIX!r}); give the clean units")
    chosen = records
    if a.list is not None:
        stems = {line.split()[0] for line in a.list.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#")}
        chosen = [r for r in records if Path(r.audio).stem in stems]
        if not chosen:
            p.error(f"{a.list}: none of its names is the audio stem of a record of {a.units}")
    encoder = SpeechEncoder.from_pretrained(a.encoder, device="cpu")
    sr = encoder.expected_sample_rate
    a.output.parent.mkdir(parents=True, exist_ok=True)
    done = _existing(a.output)
    with open(a.output, "a", encoding="utf-8") as f:
        for r in records:
            if r.id not in done:
                f.write(r.to_json() + "\n")
        f.flush()
        made = 0
        for n, r in enumerate(chosen):
            todo = [c for c in range(a.copies) if f"{r.id}{SUFFIX}{c}" not in done]
            if not todo:
                continue
            path = Path(r.audio)
            if not path.is_absolute() and a.audio_root is not None:
                path = a.audio_root / path
            wav, _ = io.load(path, sample_rate=sr)
            frames = sum(r.duration) if r.duration else len(r.units)
            for c in todo:
                rng = random.Random(zlib.crc32(f"{a.seed}:{r.id}:{c}".encode()))
                x, s, _chain = perturb(wav, sr, rng, (lo, hi), a.degrade)
                with torch.inference_mode():
                    e = encoder(x)
                units, durations = regrid(e["units"], e["durations"], frames)
                f.write(UnitRecord(f"{r.id}{SUFFIX}{c}", r.audio, units.tolist(), durations.tolist()).to_json() + "\n")
                made += 1
            f.flush()
            if (n + 1) % 200 == 0:
                print(f"{n + 1}/{len(chosen)} records", file=sys.stderr, flush=True)
    print(f"{a.output}: {len(records)} clean records + {made} perturbed copies made now "
          f"({len(done)} records were there before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
