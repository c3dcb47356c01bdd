"""Preference alignment of a unit LM: preference pairs and the DPO objective (Rafailov et al. 2023).

slamkit aligns its spoken LM with DPO on pairs of its own continuations judged by an ASR + text LM; this module
holds the pieces :mod:`speechkit.train.dpo` trains with:

- :class:`PreferencePair` and its jsonl file (``read_pairs`` / ``append_pairs`` / ``pairs_done``): one prompt's
  unit ids, the continuation preferred (``chosen``) and the one not (``rejected``), with the ranker's scores. Made
  by ``data_prep/dpo_pairs.py``; a file a job was killed in resumes (a torn last line is cut).
- :func:`continuation_logps`: the summed log-probability of each continuation given its prompt (the prompt's
  tokens are context only, as DPO scores a response given its prompt).
- :func:`dpo_loss`: ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))``, with the implicit rewards'
  accuracy and margin.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from speechkit.errors import SpeechkitError

__all__ = ["PreferencePair", "PairsError", "read_pairs", "append_pairs", "pairs_done", "continuation_logps",
           "dpo_loss"]

log = logging.getLogger(__name__)


class PairsError(SpeechkitError, ValueError):
    """A preference-pairs file breaks a rule; the message names the file, the line and the rule."""


@dataclass
class PreferencePair:
    """One preference: continuations ``chosen`` and ``rejected`` of the same ``prompt`` (unit ids)."""

    id: str
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    chosen_score: float | None = None
    """The ranker's score of ``chosen`` (higher is better; informative only)."""
    rejected_score: float | None = None
    """The ranker's score of ``rejected``."""


def _units(value, where: str, key: str, num_units: int | None) -> list[int]:
    if not isinstance(value, list) or not value:
        raise PairsError(f"{where}: {key!r} must be a non-empty list of unit ids")
    for u in value:
        if not isinstance(u, int) or isinstance(u, bool) or u < 0 or (num_units is not None and u >= num_units):
            bound = f"[0, {num_units})" if num_units is not None else ">= 0"
            raise PairsError(f"{where}: {key!r} holds {u!r}; unit ids must be integers in {bound}")
    return value


def read_pairs(path: str | os.PathLike, num_units: int | None = None) -> list[PreferencePair]:
    """The pairs of a jsonl file (one ``{"id", "prompt", "chosen", "rejected", ...}`` a line).

    Raises:
        PairsError: a missing or empty file, a line that is not JSON, a missing key, a repeated id, or a unit id
            outside ``[0, num_units)``; the message names the file and the line.
    """
    p = Path(path)
    if not p.is_file():
        raise PairsError(f"{p}: no such preference-pairs file")
    pairs, seen = [], set()
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{p}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise PairsError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise PairsError(f"{where}: a pair is an object with an 'id'")
            if row["id"] in seen:
                raise PairsError(f"{where}: id {row['id']!r} appears twice")
            seen.add(row["id"])
            pairs.append(PreferencePair(
                id=str(row["id"]), prompt=_units(row.get("prompt"), where, "prompt", num_units),
                chosen=_units(row.get("chosen"), where, "chosen", num_units),
                rejected=_units(row.get("rejected"), where, "rejected", num_units),
                chosen_score=row.get("chosen_score"), rejected_score=row.get("rejected_score")))
    if not pairs:
        raise PairsError(f"{p}: no preference pairs in the file")
    return pairs


def pairs_done(path: str | os.PathLike) -> set[str]:
    """Ids already written to a pairs file (resuming a job that writes one); a torn last line is cut off."""
    from speechkit.utils.files import jsonl_ids

    return jsonl_ids(path, "pair record", PairsError)


def append_pairs(path: str | os.PathLike, rows: list[PreferencePair | dict]) -> None:
    """Appends records (pairs, or dicts with extra fields) and flushes them to disk."""
    with open(path, "a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(asdict(r) if isinstance(r, PreferencePair) else r) + "\n")
        f.flush()
        os.fsync(f.fileno())


def continuation_logps(model, vocab, prompts: list[list[int]], continuations: list[list[int]]) -> torch.Tensor:
    """Summed log-probability of each continuation's units given its prompt, in one padded forward pass.

    The tokens are the vocabulary's prompt layout (``[BOS] + units``, no EOS) followed by the continuation's
    unit tokens; only the continuation's tokens are scored. Gradients flow when ``model`` is trained.

    Returns:
        ``(len(prompts),)`` float32 tensor on the model's device.
    """
    seqs, spans = [], []
    for p, c in zip(prompts, continuations, strict=True):
        head = vocab.token_ids(p, name="prompt", append_eos=False)
        seqs.append(head + [u + vocab.unit_offset for u in vocab.check_units(c, "continuation")])
        spans.append((len(head), len(seqs[-1])))
    device = next(model.parameters()).device
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), vocab.pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    scored = torch.zeros(len(seqs), width - 1, dtype=torch.bool)
    for i, (s, (start, end)) in enumerate(zip(seqs, spans, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        scored[i, start - 1 : end - 1] = True  # logits at t predict token t + 1
    ids, mask, scored = ids.to(device), mask.to(device), scored.to(device)
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
    token_logp = torch.gather(F.log_softmax(logits, dim=-1), 2, ids[:, 1:, None]).squeeze(2)
    return (token_logp * scored).sum(1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DPO loss of a batch and its diagnostics.

    Args:
        policy_chosen, policy_rejected: summed log-probabilities under the model being trained, ``(B,)``.
        ref_chosen, ref_rejected: the same under the frozen reference model.
        beta: the inverse temperature of the implicit reward (how far the policy may move from the reference).

    Returns:
        ``(loss, stats)``: the mean of ``-log sigmoid(beta * margin)`` with ``margin = (pi_c - ref_c) - (pi_r -
        ref_r)``; ``stats`` holds ``reward_accuracy`` (share of pairs with a positive margin), ``reward_margin``
        (mean ``beta * margin``) and ``chosen_reward`` / ``rejected_reward`` (``beta * (pi - ref)``), detached.
    """
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    margin = chosen - rejected
    loss = -F.logsigmoid(margin).mean()
    stats = {"reward_accuracy": (margin > 0).float().mean().detach(), "reward_margin": margin.mean().detach(),
             "chosen_reward": chosen.mean().detach(), "rejected_reward": rejected.mean().detach()}
    return loss, stats
