"""How good a tokenizer's units are, against phone alignments: PNMI and purity (HuBERT paper), ABX phone
discrimination within and across speakers (ZeroSpeech), and speaker leakage (speaker ID from unit histograms).

Every function takes frame-level units (one unit per frame, not deduplicated) and, where phones matter, the phone
of every frame (see :func:`speechkit.data.phones.frame_phones`).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["phone_unit_scores", "triphone_items", "abx_error", "speaker_leakage"]


def phone_unit_scores(pairs: Sequence[tuple[str, int]]) -> dict[str, float]:
    """Phone purity, cluster purity and PNMI of ``(phone, unit)`` frame pairs (HuBERT paper, section IV-C).

    phone purity: share of frames whose unit's most frequent phone is theirs; cluster purity: share of frames whose
    phone's most frequent unit is theirs; PNMI: mutual information of phone and unit over the phone entropy.

    Example:
        >>> phone_unit_scores([("a", 0), ("a", 0), ("b", 1), ("b", 1)])["pnmi"]
        1.0
    """
    joint = Counter(pairs)
    n = sum(joint.values())
    if n == 0:
        raise ValueError("no (phone, unit) pairs")
    by_unit: dict[int, Counter] = defaultdict(Counter)
    by_phone: dict[str, Counter] = defaultdict(Counter)
    for (ph, u), c in joint.items():
        by_unit[u][ph] += c
        by_phone[ph][u] += c
    p_phone = {ph: sum(c.values()) / n for ph, c in by_phone.items()}
    p_unit = {u: sum(c.values()) / n for u, c in by_unit.items()}
    mi = sum(c / n * math.log(c / n / (p_phone[ph] * p_unit[u])) for (ph, u), c in joint.items())
    h_phone = -sum(p * math.log(p) for p in p_phone.values())
    return {"phone_purity": sum(max(c.values()) for c in by_unit.values()) / n,
            "cluster_purity": sum(max(c.values()) for c in by_phone.values()) / n,
            "pnmi": mi / h_phone if h_phone > 0 else 0.0}


def triphone_items(utterances: Sequence[tuple[Sequence[int], list[tuple[str, float, float]], str]],
                   hop_seconds: float, silence: str = "_") -> list[tuple[tuple[str, str], str, str, np.ndarray]]:
    """ABX items: every phone (not silence) with a phone on each side, as ``((left, right), phone, speaker,
    units)``, ``units`` the frames of the whole triphone.

    Args:
        utterances: ``(frame_units, alignment, speaker)`` per utterance.
        hop_seconds: seconds per unit frame.
    """
    items = []
    for units, alignment, speaker in utterances:
        units = np.asarray(units)
        for j in range(1, len(alignment) - 1):
            phone = alignment[j][0]
            if phone == silence:
                continue
            a = int(round(alignment[j - 1][1] / hop_seconds))
            b = min(len(units), int(round(alignment[j + 1][2] / hop_seconds)))
            if b - a >= 3:
                items.append(((alignment[j - 1][0], alignment[j + 1][0]), phone, speaker, units[a:b]))
    return items


def _dtw(x: np.ndarray, y: np.ndarray) -> float:
    """DTW of two unit sequences with a 0/1 frame distance (same unit or not), averaged along the path."""
    cost = (x[:, None] != y[None, :]).astype(np.float64)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = ((acc[i - 1, j], steps[i - 1, j]), (acc[i, j - 1], steps[i, j - 1]),
                    (acc[i - 1, j - 1], steps[i - 1, j - 1]))
            best = min(prev, key=lambda p: p[0])
            acc[i, j], steps[i, j] = best[0] + cost[i - 1, j - 1], best[1] + 1
    return float(acc[n, m] / steps[n, m])


def abx_error(items: Sequence[tuple[tuple[str, str], str, str, np.ndarray]], *, across: bool = False,
              max_per_group: int = 4, max_cells: int = 3000, seed: int = 0) -> float:
    """ZeroSpeech-style triphone ABX error rate (lower is better; 0.5 is chance).

    A cell is a context (left, right phones), two centre phones a != b and a speaker s (within) or speakers s != t
    (across): A and B are items of (context, a, s) and (context, b, s), X an item of (context, a, s) other than A
    (within) or of (context, a, t) (across). The cell's error is the share of (A, B, X) with d(A, X) > d(B, X),
    ties counting one half; the result is the mean over cells (at most ``max_cells``, drawn with ``seed``; at most
    ``max_per_group`` items per group).

    Raises:
        ValueError: no cell can be formed (too few items sharing a context).
    """
    rng = random.Random(seed)
    groups: dict[tuple, list[np.ndarray]] = defaultdict(list)
    for context, phone, speaker, units in items:
        groups[(context, phone, speaker)].append(units)
    for key in groups:
        rng.shuffle(groups[key])
        groups[key] = groups[key][:max_per_group]
    by_context: dict[tuple, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for context, phone, speaker in groups:
        by_context[context][phone].add(speaker)
    cells = []
    for context, phones in by_context.items():
        for a in phones:
            for b in phones:
                if a == b:
                    continue
                for s in phones[a] & phones[b]:
                    if across:
                        cells += [(context, a, b, s, t) for t in phones[a] if t != s]
                    elif len(groups[(context, a, s)]) >= 2:
                        cells.append((context, a, b, s, s))
    if not cells:
        raise ValueError("no ABX cell: too few triphones share a context (use more utterances)")
    if len(cells) > max_cells:
        cells = rng.sample(cells, max_cells)
    cache: dict[tuple[int, int], float] = {}

    def d(u: np.ndarray, v: np.ndarray) -> float:
        key = (id(u), id(v))
        if key not in cache:
            cache[key] = _dtw(u, v)
        return cache[key]

    errors = []
    for context, a, b, s, t in cells:
        total = count = 0.0
        for ia, xa in enumerate(groups[(context, a, s)]):
            for xb in groups[(context, b, s)]:
                for ix, xx in enumerate(groups[(context, a, t)]):
                    if s == t and ix == ia:
                        continue
                    da, db = d(xa, xx), d(xb, xx)
                    total += 1.0 if da > db else 0.5 if da == db else 0.0
                    count += 1
        if count:
            errors.append(total / count)
    return float(np.mean(errors))


def speaker_leakage(train: Sequence[Sequence[int]], train_speakers: Sequence[str], test: Sequence[Sequence[int]],
                    test_speakers: Sequence[str], vocab_size: int) -> dict[str, float]:
    """How well a speaker can be named from an utterance's unit histogram alone.

    A logistic regression on the square roots of the unigram unit frequencies of each training utterance predicts
    the speakers of the test utterances. Units that carry no speaker information leave it at chance.

    Returns:
        ``{"accuracy", "chance"}`` (chance: the test share of the most frequent speaker).
    """
    from sklearn.linear_model import LogisticRegression

    def features(seqs):
        h = np.zeros((len(seqs), vocab_size))
        for i, s in enumerate(seqs):
            c = np.bincount(np.asarray(s, dtype=np.int64), minlength=vocab_size)[:vocab_size]
            h[i] = np.sqrt(c / max(c.sum(), 1))
        return h

    clf = LogisticRegression(max_iter=2000, C=10.0).fit(features(train), list(train_speakers))
    pred = clf.predict(features(test))
    truth = list(test_speakers)
    chance = max(Counter(truth).values()) / len(truth)
    return {"accuracy": float(np.mean([p == t for p, t in zip(pred, truth, strict=True)])), "chance": chance}
