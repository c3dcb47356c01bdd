"""The project's text corpus, for the small text LM that unit LMs warm-start from (TWIST in miniature).

Documents are train stories of :mod:`speechkit.synth.storycloze` (never its test stories) and
everyday sentences of :mod:`speechkit.synth.sentences`, shuffled together; one document a line::

    train.txt   valid.txt   .complete (settings; a re-run with the same settings returns at once)

:func:`speechkit.data.corpora.text.read_documents` reads the files back.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

__all__ = ["prepare_text_corpus"]


def prepare_text_corpus(root: str | Path, *, stories: int = 20_000, sentences: int = 20_000, seed: int = 0,
                        valid_fraction: float = 0.02) -> Path:
    """Writes ``train.txt`` and ``valid.txt``.

    Args:
        root: output folder.
        stories: train stories (five sentences each).
        sentences: single everyday sentences.
        seed: seed of both generators and of the shuffle.
        valid_fraction: share of documents held out for validation.

    Returns:
        ``root``.
    """
    from speechkit.synth.sentences import generate_sentences
    from speechkit.synth.storycloze import generate_stories
    from speechkit.utils.files import atomic_open

    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1). Found {valid_fraction}")
    root = Path(root)
    settings = {"stories": stories, "sentences": sentences, "seed": seed, "valid_fraction": valid_fraction,
                "version": 2}
    marker = root / ".complete"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    docs = [s.text for s in generate_stories(stories, seed, split="train")] + generate_sentences(sentences, seed)
    random.Random(f"speechkit-text-{seed}").shuffle(docs)
    n_valid = max(1, int(len(docs) * valid_fraction))
    for name, part in (("valid.txt", docs[:n_valid]), ("train.txt", docs[n_valid:])):
        with atomic_open(root / name) as f:
            f.writelines(d + "\n" for d in part)
    marker.write_text(json.dumps(settings))
    return root
