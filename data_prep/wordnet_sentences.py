#!/usr/bin/env python
"""Ordinary English sentences for the synthetic corpora: the usage examples of WordNet 3.0.

    .venv/bin/python data_prep/wordnet_sentences.py -o data/text/wordnet.txt       # /usr/share/wordnet
    .venv/bin/python data_prep/wordnet_sentences.py --wordnet DIR -o FILE

WordNet's glosses carry ~48k quoted usage examples ("The runners reached the finish line, panting heavily"):
everyday words in the phone contexts of ordinary English, which the project's sentence grammars do not reach.
Kept: examples of 5-18 words made of letters and plain punctuation (no digits, brackets or quotes), one per line,
sorted and unique. Source: Debian package ``wordnet-base`` (WordNet 3.0, Princeton University; the WordNet
licence: use, copy and distribute with its copyright notice). `data_prep/system_deps.sh` installs it.

The held-out sentences of ``data_prep/heldout_sets.py`` come from another source (fortunes), so no test sentence
is read by a training stage.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def examples(line: str) -> list[str]:
    """The quoted usage examples of one WordNet ``data.*`` line (they follow the ``|`` that opens the gloss)."""
    if line.startswith("  ") or "|" not in line:
        return []  # the licence header, or a line without a gloss
    gloss = line.split("|", 1)[1]
    return [q.strip() for q in re.findall(r'"([^"]*)"', gloss)]


def usable(sentence: str) -> bool:
    words = sentence.split()
    return 5 <= len(words) <= 18 and re.fullmatch(r"[A-Za-z ,;'.!?-]+", sentence) is not None and "--" not in sentence


def wordnet_sentences(wordnet_dir: str | Path) -> list[str]:
    """Every usable example of the four ``data.*`` files under ``wordnet_dir``, sorted and unique.

    Raises:
        SystemExit: a file is missing (with the package to install).
    """
    d = Path(wordnet_dir)
    out: set[str] = set()
    for name in POS_FILES:
        f = d / name
        if not f.is_file():
            raise SystemExit(f"error: {f}: no WordNet data file (install the Debian package wordnet-base, or pass "
                             "--wordnet DIR holding data.noun, data.verb, data.adj, data.adv)")
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            out.update(s for s in examples(line) if usable(s))
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    sents = wordnet_sentences(args.wordnet)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text("".join(s + "\n" for s in sents))
    tmp.replace(args.output)
    print(f"{args.output}: {len(sents)} sentences", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
