"""The Expresso resynthesis benchmark: encode each utterance of a split into units, decode it with a unit vocoder
in the same voice (and, optionally, converted to a target speaker), and score content (ASR WER/CER), pitch
(GPE/VDE/FFE against the input), voice (speaker similarity), style (a style classifier's accuracy), quality
(DNSMOS) and the unit stream's bitrate; per utterance, aggregated by speaker and by style.

Same voice means: the utterance's own speaker and style when the vocoder knows them by name (styles also as
Expresso's ``read-{style}`` / ``conv-{style}``), otherwise the closest vocoder speaker
(:meth:`speechkit.pipeline.Resynthesizer.match_speaker`) and the default style. Converted outputs are scored for
content, style and quality, and for voice against an utterance of the target speaker from the same split when
there is one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import torch

from speechkit.metrics.f0 import PitchConfig
from speechkit.metrics.folder import EvalError, FolderEvalConfig, Pair, summarize

__all__ = ["run_resynthesis"]

log = logging.getLogger(__name__)


def _segments(data: Path, split: str, out: Path, jobs: int) -> Path:
    """A prepared folder: ``data`` itself when it holds ``{split}.jsonl``, else ``prepare_expresso`` into out."""
    if (data / f"{split}.jsonl").is_file():
        return data
    from speechkit.data.corpora.expresso import prepare_expresso

    return prepare_expresso(data, out / "segments", splits=(split,), jobs=jobs)


def _groups(rows: list[dict], key: str, metrics: tuple[str, ...]) -> list[dict]:
    values = sorted({r[key] for r in rows})
    return [{"group": v, **summarize([r for r in rows if r[key] == v], metrics),
             **_style_accuracy([r for r in rows if r[key] == v])} for v in values]


def _style_accuracy(rows: list[dict]) -> dict:
    hits = [r["style_correct"] for r in rows if "style_correct" in r]
    return {"style_accuracy": sum(hits) / len(hits)} if hits else {}


def run_resynthesis(data: str | os.PathLike, *, encoder: str | os.PathLike, vocoder: str | os.PathLike,
                    out: str | os.PathLike, split: str = "test", target_speaker: str | None = None,
                    style_classifier: str | os.PathLike | None = None, config: FolderEvalConfig | None = None,
                    limit: int | None = None, kinds: tuple[str, ...] = ("read", "conversational")) -> dict:
    """Runs the benchmark and writes ``report.json`` / ``report.csv`` / ``report.html`` and the audio under
    ``out``.

    Args:
        data: an Expresso root (cut with :func:`~speechkit.data.corpora.expresso.prepare_expresso` into
            ``out/segments``) or an already prepared folder.
        encoder: a speech-encoder folder (``SpeechEncoder.save_pretrained``).
        vocoder: a vocoder folder (speechkit's, or official ``g_XXXXXXXX`` + ``config.json``).
        out: output folder.
        split: ``train``, ``dev`` or ``test``.
        target_speaker: a vocoder speaker to convert every utterance to (also scored).
        style_classifier: a :class:`~speechkit.metrics.style.StyleClassifier` folder for style accuracy.
        config: metrics, ASR, pitch settings, jobs (default: wer, cer, f0, speaker).
        limit: score only the first ``limit`` utterances (sorted by id).
        kinds: ``read`` and / or ``conversational``.

    Returns:
        The report: ``summary`` (same voice; includes ``bitrate_*`` and ``style_accuracy``),
        ``summary_converted``, ``groups`` (by speaker, by style), ``per_file`` (``condition`` = ``same`` or
        ``converted``).

    Raises:
        EvalError: no utterances, an unknown target speaker.
    """
    from speechkit.audio import io as audio_io
    from speechkit.data.datasets import ExpressoDataset
    from speechkit.metrics.bitrate import unit_bitrates
    from speechkit.metrics.report import write_report
    from speechkit.metrics.scoring import run_scoring
    from speechkit.pipeline import PipelineError, Resynthesizer
    from speechkit.units import SpeechEncoder
    from speechkit.vocoders import UnitVocoder

    cfg = config or FolderEvalConfig(metrics=("wer", "cer", "f0", "speaker"),
                                     pitch=PitchConfig.protocol("fairseq"))  # the Expresso benchmark's protocol
    cfg.validate()
    out = Path(out)
    folder = _segments(Path(data), split, out, cfg.jobs)
    ds = ExpressoDataset(folder, split, kinds=kinds)
    order = sorted(range(len(ds)), key=lambda i: ds.records[i]["id"])[:limit]
    if not order:
        raise EvalError(f"{folder}: no {'/'.join(kinds)} utterances in split {split!r}")
    rs = Resynthesizer(SpeechEncoder.from_pretrained(encoder).eval(), UnitVocoder.from_pretrained(vocoder))
    names = rs.vocoder.speakers or []
    styles = rs.vocoder.styles or []
    if target_speaker is not None and target_speaker not in names:
        raise EvalError(f"--target-speaker {target_speaker!r}: the vocoder's speakers are {names or 'none (no table)'}")
    classifier = None
    if style_classifier is not None:
        from speechkit.metrics.style import StyleClassifier

        classifier = StyleClassifier.from_pretrained(style_classifier)

    from tqdm import tqdm

    jobs, units, seconds, target_ref = [], [], 0.0, None
    sr_out = rs.output_sample_rate
    for i in tqdm(order, desc="resynthesis", unit="utt", disable=None):
        item = ds[i]
        rec = ds.records[i]
        ref_path = folder / rec["audio"]
        if target_speaker is not None and target_ref is None and item["speaker"] == target_speaker:
            target_ref = item
        try:
            enc = rs.encode(item["wav"], item["sample_rate"])
        except PipelineError as e:
            log.warning("%s: skipped (%s)", item["id"], e)
            continue
        units.append(torch.repeat_interleave(enc["units"], enc["durations"]).tolist())
        seconds += len(item["wav"]) / item["sample_rate"]
        spk = item["speaker"] if item["speaker"] in names else None
        if spk is None:
            spk = rs.match_speaker(item["wav"], item["sample_rate"], enc["units"], enc["durations"])
        style = next((s for s in (item["style"], f"{item['kind'][:4]}-{item['style']}") if s in styles), None)
        conditions = [("same", spk)] + ([("converted", target_speaker)] if target_speaker is not None else [])
        for condition, speaker in conditions:
            with torch.inference_mode():
                wav = rs.vocoder(enc["units"], speaker=speaker, style=style, durations=enc["durations"])
            path = audio_io.save(out / "audio" / condition / f"{item['id']}.wav", wav.clamp(-1, 1), sr_out)
            extra = {"condition": condition, "speaker": item["speaker"], "style": item["style"],
                     "kind": item["kind"], "vocoder_speaker": speaker if isinstance(speaker, str) else
                     (names[speaker] if speaker is not None and speaker < len(names) else speaker)}
            if classifier is not None:
                extra["predicted_style"] = classifier.predict(wav, sr_out)
                extra["style_correct"] = float(extra["predicted_style"] == item["style"])
            jobs.append({"pair": Pair(item["id"], path, ref_path, item["text"]), "extra": extra,
                         "media_dir": out / "media" / condition if cfg.media else None,
                         "media_prefix": f"media/{condition}"})
    if not jobs:
        raise EvalError(f"{folder}: every utterance of split {split!r} was too short to encode")
    same_jobs = [j for j in jobs if j["extra"]["condition"] == "same"]
    rows = run_scoring(same_jobs, cfg)
    conv_metrics = tuple(m for m in cfg.metrics if m not in ("f0", "speaker"))
    conv_jobs = [j for j in jobs if j["extra"]["condition"] == "converted"]
    conv_rows = run_scoring(conv_jobs, replace(cfg, metrics=conv_metrics)) if conv_jobs and conv_metrics else [
        {**j["extra"], "id": j["pair"].id, "hyp": str(j["pair"].hyp)} for j in conv_jobs]
    if conv_rows and "speaker" in cfg.metrics and target_ref is not None:
        from speechkit.metrics.speaker import SpeakerEncoder

        spk_enc = SpeakerEncoder()
        anchor = spk_enc.embed(target_ref["wav"], target_ref["sample_rate"])
        for r in conv_rows:
            wav, sr = audio_io.load(r["hyp"])
            r["speaker_sim"] = float(anchor @ spk_enc.embed(wav, sr))
    bitrate = unit_bitrates(units, rs.encoder.frame_rate, rs.encoder.vocab_size, seconds=seconds)
    summary = {**summarize(rows, cfg.metrics), **_style_accuracy(rows), **bitrate}
    report = {"summary": summary, "per_file": rows + conv_rows,
              "groups": {"By speaker (same voice)": _groups(rows, "speaker", cfg.metrics),
                         "By style (same voice)": _groups(rows, "style", cfg.metrics)},
              "config": {"data": str(data), "split": split, "encoder": str(encoder), "vocoder": str(vocoder),
                         "target_speaker": target_speaker, "style_classifier": None if style_classifier is None
                         else str(style_classifier), "metrics": list(cfg.metrics), "asr": cfg.asr}}
    if conv_rows:
        conv_metrics_all = conv_metrics + (("speaker",) if "speaker_sim" in conv_rows[0] else ())
        report["summary_converted"] = {**summarize(conv_rows, conv_metrics_all), **_style_accuracy(conv_rows)}
        report["groups"][f"Converted to {target_speaker}"] = [{"group": "all", **report["summary_converted"]}]
    write_report(out, report, title=f"speechkit eval resynthesis: {data} ({split})")
    return report

