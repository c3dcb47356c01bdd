"""``speechkit eval folder``: speech metrics on a folder of audio, optionally against a reference folder.

Files are paired by their path relative to the folder, without extension (``a/b.wav`` in ``--hyp`` pairs with
``a/b.flac`` in ``--ref``), or else by stem when exactly one reference file has it (``out/b.wav`` pairs with
``test/spk/b.wav``). Transcripts are ``stem<TAB>text`` lines (the key may also be the relative path).

Metric groups and the summary keys they produce:

- ``wer`` / ``cer``: ASR of each hypothesis (pocketsphinx by default) against its transcript, or, without
  ``--transcripts``, against the ASR of its reference file. Summary: corpus WER/CER (errors over all reference
  words, :mod:`speechkit.metrics.wer` normalisation); per file: the file's own rates.
- ``f0``: ``gpe``, ``vde``, ``ffe``, ``f0_rmse``, ``f0_corr`` of the hypothesis against its reference
  (:mod:`speechkit.metrics.f0`); summary: means over files.
- ``speaker``: ``speaker_sim``, cosine of resemblyzer embeddings of hypothesis and reference; summary: mean.
- ``dnsmos``: ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_p808`` of the hypothesis; summary: means.
- ``genppl``: for folders of generated speech (continuations): the ASR transcript's perplexity under a text LM
  (:mod:`speechkit.metrics.genppl`), optionally given the prompt's transcript (``--prompts``, ``stem<TAB>text``
  lines); per file ``genppl`` / ``genppl_nll`` / ``genppl_tokens``; summary ``genppl`` (exp of the mean per-file
  NLL, slamkit's aggregate, over files whose transcript has words) and ``asr_nonempty`` (the share that has).
  pocketsphinx finds words even in silence, so ``asr_nonempty`` does not tell whether there is speech: ``vad`` does.
- ``vad``: ``speech_seconds`` that silero-vad finds in the hypothesis and ``has_speech`` (1 if any); summary:
  means, so ``has_speech`` is the share of files that contain speech.

Sample rates may differ between files: each metric resamples at its boundary.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechkit.errors import SpeechkitError
from speechkit.metrics.f0 import F0_METRICS, VOICING_METRICS, PitchConfig
from speechkit.metrics.mos import DNSMOS_METRICS
from speechkit.utils.files import read_text

__all__ = ["EvalError", "FolderEvalConfig", "Pair", "pair_files", "read_transcripts", "score_pairs",
           "summarize", "evaluate_folder", "METRIC_GROUPS"]

log = logging.getLogger(__name__)

METRIC_GROUPS = {"wer": ("wer",), "cer": ("cer",), "f0": F0_METRICS + VOICING_METRICS, "speaker": ("speaker_sim",),
                 "dnsmos": DNSMOS_METRICS, "genppl": ("genppl",), "vad": ("speech_seconds", "has_speech")}
NEEDS_REFERENCE_AUDIO = ("f0", "speaker")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class EvalError(SpeechkitError, ValueError):
    """Bad evaluation input: an empty folder, unmatched files, unreadable audio, a bad transcript line."""


@dataclass(frozen=True, kw_only=True)
class FolderEvalConfig:
    """What ``evaluate_folder`` computes.

    Attributes:
        metrics: metric groups, from :data:`METRIC_GROUPS` (``wer``, ``cer``, ``f0``, ``speaker``, ``dnsmos``,
            ``genppl``, ``vad``).
        asr: ``"pocketsphinx"`` or a local Hugging Face CTC / Whisper folder.
        text_lm: GenPPL's text LM: a Hugging Face causal-LM folder or hub name (default: the bundle's,
            ``checkpoints/default/textlm``).
        pitch: pitch-tracker settings for ``f0`` (default: the ``"wide"`` protocol, YIN 50-500 Hz;
            ``PitchConfig.protocol("fairseq")`` gives the fairseq / Expresso protocol's 100-500 Hz).
        jobs: worker processes.
        media: write audio copies, F0 contours and spectrograms for the HTML report.
    """

    metrics: tuple[str, ...] = ("wer", "cer")
    asr: str = "pocketsphinx"
    text_lm: str | None = None
    pitch: PitchConfig = field(default_factory=lambda: PitchConfig.protocol("wide"))
    jobs: int = 1
    media: bool = True

    def validate(self) -> None:
        unknown = [m for m in self.metrics if m not in METRIC_GROUPS]
        if unknown or not self.metrics:
            raise EvalError(f"metrics must be a non-empty list from {sorted(METRIC_GROUPS)}. Found "
                            f"{list(self.metrics)}")
        if self.jobs < 1:
            raise EvalError(f"jobs must be >= 1. Found {self.jobs}")
        try:
            self.pitch.validate()
        except ValueError as e:
            raise EvalError(f"pitch settings: {e}") from None


@dataclass(frozen=True)
class Pair:
    """One file to score: ``id`` (relative path without extension), ``hyp``, optional ``ref``, ``text`` and
    ``prompt`` (the transcript of the prompt a continuation was generated from)."""

    id: str
    hyp: Path
    ref: Path | None = None
    text: str | None = None
    prompt: str | None = None


def _scan(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise EvalError(f"{what} {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise EvalError(f"{what} {folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
    out: dict[str, Path] = {}
    for p in files:
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in out:
            raise EvalError(f"{what} {folder}: two files share the name {key!r} ({out[key].name}, {p.name})")
        out[key] = p
    return out


def read_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """Reads ``stem<TAB>text`` lines (blank lines and ``#`` comments skipped).

    Raises:
        EvalError: missing file, a line without a tab, or a stem given twice (names the file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise EvalError(f"transcripts {p}: no such file")
    out: dict[str, str] = {}
    for n, line in enumerate(read_text(p, EvalError).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        stem, sep, text = line.partition("\t")
        if not sep:
            raise EvalError(f"{p}:{n}: expected 'stem<TAB>text', found {line[:80]!r}")
        if stem.strip() in out:
            raise EvalError(f"{p}:{n}: stem {stem.strip()!r} appears twice")
        out[stem.strip()] = text.strip()
    return out


def _unmatched(keys: list[str], where: str) -> EvalError:
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return EvalError(f"{len(keys)} hypothesis file(s) have no match in {where}: {shown} (files pair by name without "
                     "extension)")


def pair_files(hyp_dir: str | os.PathLike, ref_dir: str | os.PathLike | None = None,
               transcripts: str | os.PathLike | None = None,
               prompts: str | os.PathLike | None = None) -> list[Pair]:
    """Pairs the audio of ``hyp_dir`` with ``ref_dir``'s, with transcript lines and with prompt transcripts.

    Raises:
        EvalError: an empty or missing folder, hypothesis files without a reference file or transcript, or a
            malformed transcripts file.
    """
    hyps = _scan(Path(hyp_dir), "--hyp")
    refs = _scan(Path(ref_dir), "--ref") if ref_dir is not None else None
    matched: dict[str, Path] = {}
    if refs is not None:
        stems: dict[str, list[Path]] = {}
        for k, p in refs.items():
            stems.setdefault(Path(k).name, []).append(p)
        for k in hyps:  # same relative path, else the same stem when exactly one reference file has it
            found = refs.get(k) or (stems[Path(k).name][0] if len(stems.get(Path(k).name, [])) == 1 else None)
            if found is not None:
                matched[k] = found
        missing = [k for k in hyps if k not in matched]
        if missing:
            raise _unmatched(missing, f"--ref {ref_dir}")
        if len(refs) > len(matched):
            log.warning("%d reference file(s) have no hypothesis and are ignored", len(refs) - len(matched))
    texts = _lookup(hyps, transcripts, "--transcripts")
    contexts = _lookup(hyps, prompts, "--prompts")
    return [Pair(k, h, matched.get(k), texts[k] if texts else None, contexts[k] if contexts else None)
            for k, h in hyps.items()]


def _lookup(hyps: dict[str, Path], path, option: str) -> dict[str, str] | None:
    if path is None:
        return None
    table = read_transcripts(path)
    found = {k: table.get(k, table.get(Path(k).name)) for k in hyps}
    missing = [k for k, t in found.items() if t is None]
    if missing:
        raise _unmatched(missing, f"{option} {path}")
    return found


def _check_readable(pairs: list[Pair]) -> None:
    from speechkit.audio import io as audio_io

    bad = []
    for p in pairs:
        for f in (p.hyp, p.ref):
            if f is None:
                continue
            try:
                head = audio_io.info(f)
                if head.num_frames == 0:
                    raise audio_io.AudioError(f, "has zero samples")
            except audio_io.AudioError as e:
                bad.append(str(e))
    if bad:
        raise EvalError(f"{len(bad)} unreadable audio file(s): " + "; ".join(bad[:3])
                        + (f"; and {len(bad) - 3} more" if len(bad) > 3 else ""))


def score_pairs(pairs: list[Pair], config: FolderEvalConfig, media_dir: Path | None = None) -> list[dict]:
    """Scores every pair (in ``config.jobs`` processes, with a progress bar); returns one row per pair in order."""
    from speechkit.metrics.scoring import run_scoring

    jobs = [{"pair": p, "media_dir": media_dir} for p in pairs]
    return run_scoring(jobs, config)


def summarize(rows: list[dict], metrics: tuple[str, ...]) -> dict[str, float]:
    """Corpus figures: WER/CER over all words, other metrics averaged over files (NaNs left out)."""
    from speechkit.metrics.wer import cer, normalize_text, wer

    out: dict[str, float] = {"num_files": len(rows)}
    scored = [r for r in rows if r.get("text") and normalize_text(r["text"])]
    for name, fn in (("wer", wer), ("cer", cer)):
        if name in metrics:
            out[name] = fn([r["text"] for r in scored], [r["asr"] for r in scored]) if scored else math.nan
    if "genppl" in metrics:
        from speechkit.metrics.genppl import aggregate_genppl

        out["genppl"] = aggregate_genppl([r.get("genppl_nll", math.nan) for r in rows])
        out["asr_nonempty"] = float(np.mean([bool(r.get("genppl_tokens")) for r in rows])) if rows else math.nan
    for group in metrics:
        if group in ("wer", "cer", "genppl"):
            continue
        for key in METRIC_GROUPS[group]:
            values = [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]
            out[key] = float(np.mean(values)) if values else math.nan
    return out


def evaluate_folder(hyp_dir: str | os.PathLike, *, ref_dir: str | os.PathLike | None = None,
                    transcripts: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                    config: FolderEvalConfig | None = None, prompts: str | os.PathLike | None = None) -> dict:
    """Scores a folder of audio and (with ``out``) writes ``report.json``, ``report.csv`` and ``report.html``.

    Args:
        hyp_dir: the audio under test.
        ref_dir: reference audio, paired by name (needed by ``f0`` and ``speaker``; for ``wer`` without
            ``transcripts``).
        transcripts: ``stem<TAB>text`` file of reference texts.
        prompts: ``stem<TAB>text`` file of prompt transcripts (``genppl`` scores each transcript given its
            prompt's).
        out: report folder (``None``: nothing written).
        config: metrics and options.

    Returns:
        ``{"summary": {metric: value, "num_files": n}, "per_file": [row, ...], "config": {...}}``.

    Raises:
        EvalError: bad inputs (see :func:`pair_files`), a metric that needs ``ref_dir`` without it, unreadable
            audio.

    Example:
        >>> report = evaluate_folder("resynth/", ref_dir="data/test", config=FolderEvalConfig(metrics=("f0",)))
        >>> report["summary"]["ffe"]
    """
    from dataclasses import asdict

    from speechkit.metrics.report import write_report

    cfg = config or FolderEvalConfig()
    cfg.validate()
    need_ref = [m for m in cfg.metrics if m in NEEDS_REFERENCE_AUDIO]
    if need_ref and ref_dir is None:
        raise EvalError(f"metrics {need_ref} compare with reference audio: give --ref DIR")
    if any(m in ("wer", "cer") for m in cfg.metrics) and ref_dir is None and transcripts is None:
        raise EvalError("wer/cer need reference texts: give --transcripts FILE (or --ref DIR to use the ASR of the "
                        "reference audio)")
    if prompts is not None and "genppl" not in cfg.metrics:
        raise EvalError("--prompts are the context of the genppl metric: add genppl to the metrics")
    if "genppl" in cfg.metrics:
        from speechkit.metrics.genppl import TextLMError, check_text_lm

        try:
            check_text_lm(cfg.text_lm)
        except TextLMError as e:
            raise EvalError(f"--text-lm: {e}") from None
    pairs = pair_files(hyp_dir, ref_dir, transcripts, prompts)
    _check_readable(pairs)
    media_dir = Path(out) / "media" if out is not None and cfg.media else None
    rows = score_pairs(pairs, cfg, media_dir)
    report = {"summary": summarize(rows, cfg.metrics), "per_file": rows,
              "config": {"hyp": str(hyp_dir), "ref": None if ref_dir is None else str(ref_dir),
                         "transcripts": None if transcripts is None else str(transcripts),
                         "prompts": None if prompts is None else str(prompts), **asdict(cfg)}}
    if out is not None:
        write_report(Path(out), report, title=f"speechkit eval folder: {hyp_dir}")
    return report
