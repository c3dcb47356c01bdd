"""Pairwise likelihood benchmarks: spoken StoryCloze (sSC, tSC), sWUGGY, sBLIMP.

Each item is a pair (positive, negative) of audio files; the LM is right when it gives the positive one the
higher log-likelihood. Accuracy = mean over pairs of 1 (positive higher), 0.5 (tie) or 0 (negative higher).
Scores are :meth:`UnitLM.log_likelihood` (mean per token by default, as slamkit; ``sum`` selectable).

Folder layouts (found recursively; pairs never cross a sub-folder):

- **labelled** (spoken StoryCloze releases, speechkit's synthetic StoryCloze): ``{id}_{label}[...].wav`` where
  the label is ``correct``/``incorrect`` (also ``pos``/``neg``, ``positive``/``negative``); files sharing an
  ``id`` form a pair.
- **positional** (slamkit's ``ModellingMetricDataset``): files sorted by the integer before the first separator
  (``_`` for StoryCloze and sWUGGY, ``+`` for sBLIMP), then taken two by two, the first of each two being the
  positive. slamkit breaks ties in that integer by directory order; speechkit breaks them by file name, so the
  result does not depend on the file system.

``layout="auto"`` picks labelled when every file carries a label, positional otherwise.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from speechkit.data.manifest import AUDIO_EXTENSIONS
from speechkit.ulm.config import UnitLMError
from speechkit.utils.files import atomic_open

__all__ = ["BENCHMARKS", "Pair", "PairResult", "find_pairs", "pair_accuracy", "score_pairs", "evaluate_pairs",
           "write_pairs_csv", "text_storycloze"]

BENCHMARKS = {"storycloze": "_", "swuggy": "_", "sblimp": "+"}  # name -> slamkit separator
POSITIVE = {"correct", "pos", "positive"}
NEGATIVE = {"incorrect", "neg", "negative"}


@dataclass(frozen=True)
class Pair:
    """One benchmark item: ``id`` (folder-relative), and the positive and negative audio files."""

    id: str
    positive: Path
    negative: Path


@dataclass
class PairResult:
    """Scores of all pairs of a benchmark, in :func:`find_pairs` order."""

    pairs: list[Pair]
    positive_ll: torch.Tensor
    negative_ll: torch.Tensor

    @property
    def scores(self) -> torch.Tensor:
        """``(n,)`` 1 / 0.5 / 0 per pair."""
        return (self.positive_ll > self.negative_ll).float() + 0.5 * (self.positive_ll == self.negative_ll).float()

    @property
    def accuracy(self) -> float:
        return float(self.scores.mean())

    def summary(self) -> dict:
        ties = int((self.positive_ll == self.negative_ll).sum())
        return {"accuracy": self.accuracy, "pairs": len(self.pairs), "ties": ties}


def _label(stem: str, sep: str) -> str | None:
    parts = stem.split(sep)
    return parts[1].lower() if len(parts) > 1 and parts[1].lower() in POSITIVE | NEGATIVE else None


def _labelled_pairs(folder: Path, files: list[Path], sep: str, base: Path) -> list[Pair]:
    groups: dict[str, dict[str, Path]] = {}
    for f in files:
        key, kind = f.stem.split(sep)[0], "pos" if _label(f.stem, sep) in POSITIVE else "neg"
        slot = groups.setdefault(key, {})
        if kind in slot:
            raise UnitLMError(f"{folder}: two {'positive' if kind == 'pos' else 'negative'} files for id {key!r}: "
                              f"{slot[kind].name} and {f.name}")
        slot[kind] = f
    pairs = []
    for key in sorted(groups, key=lambda k: (int(k) if k.isdigit() else float("inf"), k)):
        slot = groups[key]
        if len(slot) != 2:
            have = next(iter(slot.values())).name
            raise UnitLMError(f"{folder}: {have} has no {'negative' if 'pos' in slot else 'positive'} partner "
                              f"(labelled layout: every id needs one correct and one incorrect file)")
        rel = (folder.relative_to(base) / key).as_posix()
        pairs.append(Pair(rel, slot["pos"], slot["neg"]))
    return pairs


def _positional_pairs(folder: Path, files: list[Path], sep: str, base: Path) -> list[Pair]:
    def index(f: Path) -> int:
        head = f.stem.split(sep)[0]
        if not head.lstrip("-").isdigit():
            raise UnitLMError(f"{f}: positional layout needs names starting with an integer and {sep!r} "
                              f"(slamkit sorts by int(name.split({sep!r})[0])); found {f.name!r}")
        return int(head)

    ordered = sorted(files, key=lambda f: (index(f), f.name))
    if len(ordered) % 2:
        raise UnitLMError(f"{folder}: {len(ordered)} audio files, an odd number; pairs need an even number "
                          f"(the last file, {ordered[-1].name}, has no partner)")
    rel = folder.relative_to(base)
    return [Pair((rel / ordered[i].stem).as_posix(), ordered[i], ordered[i + 1]) for i in range(0, len(ordered), 2)]


def find_pairs(folder: str | os.PathLike, *, sep: str = "_", layout: str = "auto",
               extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Pair]:
    """Pairs of a benchmark folder (see the module docstring for the layouts).

    Args:
        folder: benchmark folder (searched recursively).
        sep: separator after the leading index/id (``"_"``; ``"+"`` for sBLIMP).
        layout: ``"auto"``, ``"labelled"`` or ``"positional"``.
        extensions: audio file extensions.

    Returns:
        Pairs sorted by folder, then by id / index.

    Raises:
        UnitLMError: no audio, an odd number of files, a missing partner, or names that do not fit the layout.
    """
    if layout not in ("auto", "labelled", "positional"):
        raise UnitLMError(f"layout must be auto, labelled or positional. Found {layout!r}")
    base = Path(folder)
    if not base.is_dir():
        raise UnitLMError(f"{base}: not a directory")
    exts = {f".{e.lower().lstrip('.')}" for e in extensions}
    by_dir: dict[Path, list[Path]] = {}
    for f in sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in exts):
        by_dir.setdefault(f.parent, []).append(f)
    if not by_dir:
        raise UnitLMError(f"{base}: no audio files (extensions {', '.join(sorted(exts))})")
    every_labelled = all(_label(f.stem, sep) for files in by_dir.values() for f in files)
    if layout == "labelled" and not every_labelled:
        bad = next(f for files in by_dir.values() for f in files if not _label(f.stem, sep))
        raise UnitLMError(f"{bad}: labelled layout needs names like '12{sep}correct.wav' / '12{sep}incorrect.wav'")
    use_labels = layout == "labelled" or (layout == "auto" and every_labelled)
    pairs = []
    for d in sorted(by_dir):
        make = _labelled_pairs if use_labels else _positional_pairs
        pairs += make(d, by_dir[d], sep, base)
    return pairs


def score_pairs(lm, positives: Sequence, negatives: Sequence, *, reduction: str = "mean",
                batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-likelihoods of both sides of every pair, all sequences batched together (longest first).

    Returns:
        ``(positive_ll, negative_ll)``, each ``(n,)``.
    """
    if len(positives) != len(negatives):
        raise UnitLMError(f"{len(positives)} positives but {len(negatives)} negatives")
    ll = lm.log_likelihood(list(positives) + list(negatives), reduction=reduction, batch_size=batch_size)
    return ll[:len(positives)], ll[len(positives):]


def pair_accuracy(positive_ll: torch.Tensor, negative_ll: torch.Tensor) -> float:
    """Mean of 1 (positive higher), 0.5 (tie), 0 (negative higher)."""
    return PairResult([], torch.as_tensor(positive_ll), torch.as_tensor(negative_ll)).accuracy


def evaluate_pairs(lm, pairs: list[Pair], units_of: Callable[[Path], Sequence[int]], *, reduction: str = "mean",
                   batch_size: int = 32) -> PairResult:
    """Scores every pair: units of each file (``units_of(path)``, e.g. a speech encoder or a units lookup), then
    batched log-likelihoods."""
    if not pairs:
        raise UnitLMError("no pairs to evaluate")
    pos = [units_of(p.positive) for p in pairs]
    neg = [units_of(p.negative) for p in pairs]
    pos_ll, neg_ll = score_pairs(lm, pos, neg, reduction=reduction, batch_size=batch_size)
    return PairResult(pairs, pos_ll, neg_ll)


def write_pairs_csv(path: str | os.PathLike, result: PairResult, root: str | os.PathLike | None = None) -> Path:
    """One row per pair: ``id, positive, negative, positive_ll, negative_ll, score`` (paths relative to ``root``)."""
    def rel(p: Path) -> str:
        return os.path.relpath(p, root) if root is not None else str(p)

    with atomic_open(path) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "positive", "negative", "positive_ll", "negative_ll", "score"])
        for pair, a, b, s in zip(result.pairs, result.positive_ll.tolist(), result.negative_ll.tolist(),
                                 result.scores.tolist(), strict=True):
            w.writerow([pair.id, rel(pair.positive), rel(pair.negative), f"{a:.6f}", f"{b:.6f}", s])
    return Path(path)


def text_storycloze(text_lm_dir: str | os.PathLike, stories_jsonl: str | os.PathLike, *, reduction: str = "mean",
                    batch_size: int = 32) -> dict[str, float]:
    """The text topline: accuracy of an HF text LM on the *text* of a synthetic StoryCloze (``stories.jsonl`` of
    :func:`speechkit.synth.storycloze.prepare_storycloze`), scored like the spoken version (whole story,
    ``BOS text EOS``, mean or sum log-likelihood).

    Returns:
        ``{"sSC": accuracy, "tSC": accuracy, "pairs": n}``.
    """
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from speechkit.ulm.interop import check_causal_lm
    from speechkit.ulm.model import token_log_likelihood

    check_causal_lm(text_lm_dir)
    tok = AutoTokenizer.from_pretrained(str(text_lm_dir))
    model = AutoModelForCausalLM.from_pretrained(str(text_lm_dir))
    rows = [json.loads(line) for line in Path(stories_jsonl).read_text(encoding="utf-8").splitlines() if line]
    if not rows:
        raise UnitLMError(f"{stories_jsonl}: no stories")
    specials = ([tok.bos_token_id] if tok.bos_token_id is not None else [],
                [tok.eos_token_id] if tok.eos_token_id is not None else [])

    def ids(context: list[str], ending: str) -> list[int]:
        body = tok(" ".join([*context, ending]), add_special_tokens=False)["input_ids"]
        return specials[0] + body + specials[1]

    out: dict[str, float] = {"pairs": len(rows)}
    for name, key in (("sSC", "ssc_ending"), ("tSC", "tsc_ending")):
        seqs = [ids(r["context"], r["ending"]) for r in rows] + [ids(r["context"], r[key]) for r in rows]
        ll = token_log_likelihood(model, seqs, reduction=reduction, batch_size=batch_size,
                                  pad_id=tok.pad_token_id or 0)
        out[name] = pair_accuracy(ll[:len(rows)], ll[len(rows):])
    return out

