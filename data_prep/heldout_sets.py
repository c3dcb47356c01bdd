#!/usr/bin/env python
"""Held-out test sets that look like a user's world, built from Debian packages; no training stage reads them.

    .venv/bin/python data_prep/heldout_sets.py data/heldout            # downloads 4 .deb files (apt-get download)
    .venv/bin/python data_prep/heldout_sets.py data/heldout --debs DIR # .deb files already at hand

Three sets, each a folder with ``items.tsv`` (id, path, text, speaker, group) and 16-bit WAV files:

* ``real_phrases``: recorded human speech. The English prompts of the Asterisk PBX (Allison Smith, one US woman,
  studio recordings shipped G.722-coded at 16 kHz; package ``asterisk-core-sounds-en-g722``, CC-BY-SA-3.0), with
  the transcripts the package ships (``core-sounds-en.txt``); prompts of 3 or more words without digits or
  bracketed non-speech.
* ``real_words``: recorded single words and letter names of two more people (KDE KLettres, package
  ``klettres-data``, GPL-2+: its ``en`` and ``en_GB`` voices, 44.1 kHz), for closed-vocabulary recognition. Digraph
  sounds ("ch", "th", "aw") are left out: they are not words.
* ``unseen_sentences``: text no training stage reads (the quotations of ``fortunes-min``: single sentences of 6-16
  plain words) spoken by the default corpus's MBROLA voices us1/us2 (group ``corpus_voice``) and by voices no
  speechkit corpus trains on (:data:`TEST_ONLY_VOICES`, group ``unseen_voice``).

The selection is deterministic (sorted by a hash of the item name); a re-run with the same settings returns at once.
``DATA_CARD.md`` beside the sets says where every file came from, under which licence, and how the transcripts
were made.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

PACKAGES = {
    "asterisk-core-sounds-en-g722": "audio of real_phrases (G.722, 16 kHz)",
    "asterisk-core-sounds-en": "transcripts of real_phrases (core-sounds-en.txt)",
    "klettres-data": "audio of real_words (Ogg Vorbis, 44.1 kHz)",
    "fortunes-min": "text of unseen_sentences",
}
ASTERISK_DIR = "usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TEXT = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
KLETTRES_DIR = "usr/share/klettres"
FORTUNES_DIR = "usr/share/games/fortunes"
# voices that no speechkit training corpus uses: espeak-ng accents and variants the corpus generators never pick
TEST_ONLY_VOICES = {"tcar": "en-029+m4", "tsco": "en-gb-scotland+f3", "tnyc": "en-us-nyc+m6", "trp": "en-gb-x-rp+f5"}
CORPUS_VOICES = ("us1", "us2")
VERSION = 1
FIELDS = ("id", "path", "text", "speaker", "group")


def _key(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def fetch_packages(debs: Path) -> dict[str, Path]:
    """The ``.deb`` file of every package in :data:`PACKAGES` under ``debs`` (``apt-get download`` for missing ones)."""
    debs.mkdir(parents=True, exist_ok=True)
    found = {}
    for pkg in PACKAGES:
        hits = sorted(debs.glob(f"{pkg}_*.deb"))
        if not hits:
            if shutil.which("apt-get") is None:
                raise SystemExit(f"error: {debs}: no {pkg}_*.deb and no apt-get to download it; put the .deb there")
            r = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True)
            hits = sorted(debs.glob(f"{pkg}_*.deb"))
            if r.returncode != 0 or not hits:
                raise SystemExit(f"error: apt-get download {pkg} failed in {debs}: {r.stderr.strip()[-300:]}")
        found[pkg] = hits[-1]
    return found


def unpack(debs: dict[str, Path], root: Path) -> None:
    for deb in debs.values():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def asterisk_transcripts(text: str) -> dict[str, str]:
    """Prompt name -> words, from ``core-sounds-en.txt`` (``name: Text.`` lines; ``;`` comments)."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(";") or ": " not in line:
            continue
        name, said = line.split(": ", 1)
        out[name.strip()] = said.strip()
    return out


def usable_phrase(text: str) -> bool:
    """A spoken phrase of 3+ plain words: no digits, no bracketed non-speech, no ellipsis-cut prompt."""
    if re.search(r"[\[\]\d<>]", text) or "..." in text:
        return False
    return len(re.findall(r"[A-Za-z']+", text)) >= 3


def fortune_sentences(text: str) -> list[str]:
    """Single sentences of 6-16 plain words from a fortune file (entries split by ``%``; attributions dropped)."""
    out = []
    for entry in text.split("\n%\n"):
        lines = [ln for ln in entry.splitlines() if ln.strip() and not re.match(r"^\s*--", ln)]
        said = " ".join(ln.strip() for ln in lines)
        if not said or not re.fullmatch(r"[A-Za-z ,;'.!?-]+", said) or "--" in said:
            continue
        if len(re.findall(r"[.!?]", said.rstrip(".!?"))) or said.isupper():
            continue  # more than one sentence, or shouting
        if 6 <= len(said.split()) <= 16:
            out.append(said)
    return sorted(set(out))


def _write_wav(path: Path, wav: np.ndarray, sr: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wav, -1, 1), sr, subtype="PCM_16")


def _decode_g722(path: Path) -> np.ndarray:
    import av

    with av.open(str(path), format="g722") as c:
        frames = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
    return np.concatenate(frames).astype(np.float32) / 32768.0


def _write_items(folder: Path, rows: list[dict]) -> None:
    with open(folder / "items.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def read_items(folder: str | Path) -> list[dict]:
    """Rows of ``folder/items.tsv`` with ``path`` made absolute."""
    folder = Path(folder)
    with open(folder / "items.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["path"] = str(folder / r["path"])
    return rows


def build_real_phrases(pkg: Path, out: Path, limit: int) -> list[dict]:
    texts = asterisk_transcripts(gzip.decompress((pkg / ASTERISK_TEXT).read_bytes()).decode("utf-8", "replace"))
    audio = pkg / ASTERISK_DIR
    names = sorted((n for n, t in texts.items() if "/" not in n and usable_phrase(t)
                    and (audio / f"{n}.g722").is_file()), key=_key)[:limit]
    rows = []
    for n in sorted(names):
        _write_wav(out / "wav" / f"{n}.wav", _decode_g722(audio / f"{n}.g722"), 16000)
        rows.append({"id": n, "path": f"wav/{n}.wav", "text": texts[n], "speaker": "allison", "group": "phrase"})
    return rows


def build_real_words(pkg: Path, out: Path, vocabulary: set[str]) -> list[dict]:
    import soundfile as sf

    rows = []
    for lang, speaker in (("en", "klettres_en"), ("en_GB", "klettres_engb")):
        for kind in ("alpha", "syllab"):
            for f in sorted((pkg / KLETTRES_DIR / lang / kind).glob("*.ogg")):
                word = f.stem.lower()
                if word not in vocabulary:
                    continue  # a digraph sound, not a word
                wav, sr = sf.read(str(f), dtype="float32", always_2d=True)
                name = f"{speaker}_{kind}_{word}"
                _write_wav(out / "wav" / f"{name}.wav", wav.mean(axis=1), sr)
                rows.append({"id": name, "path": f"wav/{name}.wav", "text": word, "speaker": speaker,
                             "group": "letter" if kind == "alpha" else "word"})
    return rows


def build_unseen_sentences(pkg: Path, out: Path, limit: int) -> list[dict]:
    from speechkit.synth import tts

    sents: list[str] = []
    for name in ("fortunes", "literature", "riddles"):
        f = pkg / FORTUNES_DIR / name
        if f.is_file():
            sents += fortune_sentences(f.read_text(encoding="latin-1"))
    chosen = sorted(set(sents), key=_key)[:limit]
    unseen = [tts.Voice(k, "espeak", v, "M" if "+m" in v else "F") for k, v in TEST_ONLY_VOICES.items()]
    rows = []
    for i, text in enumerate(chosen):
        for group, voice in (("corpus_voice", tts.MBROLA_VOICES[CORPUS_VOICES[i % len(CORPUS_VOICES)]]),
                             ("unseen_voice", unseen[i % len(unseen)])):
            syn = tts.synthesize(text, voice)
            name = f"{voice.name}_{i:03d}"
            _write_wav(out / "wav" / f"{name}.wav", syn.wav, syn.sample_rate)
            rows.append({"id": name, "path": f"wav/{name}.wav", "text": text, "speaker": voice.name, "group": group})
    return rows


def _package_table(debs: dict[str, Path]) -> str:
    lines = ["| package | file | sha256 | used for |", "|---|---|---|---|"]
    for pkg, deb in debs.items():
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()[:16]
        lines.append(f"| {pkg} | {deb.name} | {digest}… | {PACKAGES[pkg]} |")
    return "\n".join(lines)


def data_card(debs: dict[str, Path], counts: dict[str, dict]) -> str:
    c = counts
    voices = ", ".join(f"{k}={v}" for k, v in TEST_ONLY_VOICES.items())
    rows = [
        ("real_phrases", c["real_phrases"]["items"], "1 (Allison Smith, US English, female)",
         "studio prompts as shipped: G.722 wideband (16 kHz, ~7 kHz band)",
         "the package's core-sounds-en.txt, written by the recording's producers", "CC-BY-SA-3.0"),
        ("real_words", f"{c['real_words']['items']} ({c['real_words']['words']} words, "
         f"{c['real_words']['letters']} letter names)", "2 (KLettres `en` and `en_GB` voices; names not given)",
         "Ogg Vorbis 44.1 kHz, mixed to mono", "the file name (the word or letter the program shows)", "GPL-2+"),
        ("unseen_sentences", f"{c['unseen_sentences']['items']} ({c['unseen_sentences']['sentences']} sentences x "
         "2 voices)", f"corpus voices {', '.join(CORPUS_VOICES)} (MBROLA); test-only espeak-ng voices {voices}",
         "synthesised here (MBROLA 16 kHz, espeak-ng 22.05 kHz)", "the text itself",
         "text: fortune-mod data (BSD; the quotations are mostly public-domain literature); voices: MBROLA "
         "(non-commercial), espeak-ng (GPL-3.0)"),
    ]
    table = "\n".join("| " + " | ".join(str(x) for x in r) + " |" for r in rows)
    return f"""# Held-out test sets (built by data_prep/heldout_sets.py)

No speechkit training stage reads these files or their text. They measure what a user meets first: real human
recordings and sentences outside the project's grammars.

| set | items | speakers | audio | transcripts | licence |
|---|---:|---|---|---|---|
{table}

Selection: real_phrases keeps prompts of 3+ words with no digits, bracketed non-speech or "..." and takes the first
{c['real_phrases']['items']} by SHA-1 of the prompt name; real_words keeps every file whose name is a word of the
pocketsphinx en-us dictionary (digraph sounds left out); unseen_sentences keeps single-sentence fortunes of 6-16
plain words (no digits, quotes or dialogue) and takes the first {c['unseen_sentences']['sentences']} by SHA-1 of the
text. The test-only voices are never used by `speechkit prepare` corpora; the training corpus's extra text is
WordNet's usage examples (data_prep/wordnet_sentences.py), another source.

Packages (Debian bookworm, fetched with `apt-get download`):

{_package_table(debs)}
"""


def build(out: Path, debs_dir: Path, *, phrases: int = 60, sentences: int = 40) -> Path:
    settings = {"version": VERSION, "phrases": phrases, "sentences": sentences}
    marker = out / ".complete"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        print(f"{out}: complete", file=sys.stderr)
        return out
    from pocketsphinx import get_model_path

    debs = fetch_packages(debs_dir)
    pkg = out / "_packages"
    if pkg.exists():
        shutil.rmtree(pkg)
    unpack(debs, pkg)
    dict_path = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
    vocabulary = {ln.split()[0] for ln in dict_path.read_text().splitlines() if ln.strip()}
    counts = {}
    for name, make in (("real_phrases", lambda d: build_real_phrases(pkg, d, phrases)),
                       ("real_words", lambda d: build_real_words(pkg, d, vocabulary)),
                       ("unseen_sentences", lambda d: build_unseen_sentences(pkg, d, sentences))):
        d = out / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        rows = make(d)
        _write_items(d, rows)
        counts[name] = {"items": len(rows), "words": sum(r["group"] == "word" for r in rows),
                        "letters": sum(r["group"] == "letter" for r in rows),
                        "sentences": len({r["text"] for r in rows})}
        print(f"{name}: {len(rows)} items", file=sys.stderr)
    shutil.rmtree(pkg)
    (out / "DATA_CARD.md").write_text(data_card(debs, counts))
    marker.write_text(json.dumps(settings))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--debs", type=Path, default=None, help="folder of the .deb files (default: OUT/debs)")
    p.add_argument("--phrases", type=int, default=60)
    p.add_argument("--sentences", type=int, default=40)
    args = p.parse_args(argv)
    build(args.out, args.debs or args.out / "debs", phrases=args.phrases, sentences=args.sentences)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
