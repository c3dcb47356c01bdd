"""``speechkit demo`` / ``make demo``: the default bundle end to end on the samples it ships.

1. resynthesis of every bundled sample in its own voice, and of the first sample into every speaker and style;
2. a spoken continuation of the first sample (the unit LM continues its units; the vocoder speaks them);
3. evaluation of the same-voice resynthesis against the originals (pocketsphinx WER, F0 errors, speaker similarity)
   with the HTML report, and of the continuation: its pocketsphinx transcript, its GenPPL (the transcript's
   perplexity under the bundle's text LM, given the prompt's transcript) and whether silero-vad finds speech in it;
   the report has a "Continuation" section with its audio.

Example:
    >>> from speechkit.demo import run_demo
    >>> summary = run_demo("checkpoints/default", "demo_out")
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from speechkit.errors import SpeechkitError
from speechkit.hub import DEFAULT_MODEL
from speechkit.metrics.folder import read_transcripts
from speechkit.metrics.report import write_report
from speechkit.utils.files import write_json


def _samples(model: Path) -> tuple[list[Path], Path]:
    folder = model / "samples"
    transcripts = folder / "transcripts.txt"
    wavs = sorted(folder.glob("*.wav"))
    if not wavs or not transcripts.is_file():
        raise SpeechkitError(f"{folder}: no samples (*.wav + transcripts.txt); the demo needs a bundle built by "
                             "recipes/default/run.sh")
    return wavs, transcripts


def run_demo(model: str | os.PathLike = DEFAULT_MODEL, out: str | os.PathLike = "demo_out", *,
             continuation_seconds: float = 3.0, seed: int = 0, jobs: int = 1) -> dict:
    """Runs the demo; returns its summary (also written to ``out/summary.json``).

    Raises:
        SpeechkitError: the model folder lacks a part or its samples.
    """
    from speechkit import hub
    from speechkit.audio import io
    from speechkit.metrics.folder import FolderEvalConfig, evaluate_folder
    from speechkit.pipeline import Resynthesizer, SpeechContinuation
    from speechkit.ulm import UnitLM

    t0 = time.time()
    model_dir, out = hub.local_model_dir(model), Path(out)
    wavs, transcripts = _samples(model_dir)
    rs = Resynthesizer.from_pretrained(model_dir)
    sr_out = rs.output_sample_rate
    speakers, styles = rs.vocoder.speakers or [], rs.vocoder.styles or []
    audio_seconds, synth_seconds = 0.0, 0.0
    for wav_path in wavs:  # 1a. same voice
        wav, sr = io.load(wav_path)
        t = time.time()
        y = rs(wav, sr)
        synth_seconds += time.time() - t
        audio_seconds += len(wav) / sr
        io.save(out / "resynthesis" / wav_path.name, y.clamp(-1, 1), sr_out)
    first, sr = io.load(wavs[0])
    conversion_rows = []
    for speaker in speakers:  # 1b. every speaker x style
        for style in styles or [None]:
            y = rs(first, sr, speaker=speaker, style=style)
            path = io.save(out / "conversion" / f"{wavs[0].stem}__{speaker}__{style}.wav", y.clamp(-1, 1), sr_out)
            conversion_rows.append(_media_row(f"{speaker} · {style or '-'}", path, y, sr_out, out / "report"))
    # 2. continuation of the first sample
    sc = SpeechContinuation(rs.encoder, UnitLM.from_pretrained(model_dir / "ulm"), rs.vocoder)  # parts loaded once
    options = {"seconds": continuation_seconds, "seed": seed, "stop_on_eos": False}  # the asked length
    cont = sc(first, sr, **options)
    cont_path = io.save(out / "continuation" / f"{wavs[0].stem}.wav", cont.clamp(-1, 1), sc.output_sample_rate)
    new = sc(first, sr, include_prompt=False, **options)  # the same sample (same seed), the new part alone
    new_path = io.save(out / "continuation" / "generated" / f"{wavs[0].stem}.wav", new.clamp(-1, 1),
                       sc.output_sample_rate)
    # 3. evaluation
    report = evaluate_folder(out / "resynthesis", ref_dir=model_dir / "samples", transcripts=transcripts,
                             out=out / "report",
                             config=FolderEvalConfig(metrics=("wer", "f0", "speaker"), jobs=jobs))
    originals = evaluate_folder(model_dir / "samples", transcripts=transcripts,
                                config=FolderEvalConfig(metrics=("wer",), media=False))
    cont_row = _score_continuation(model_dir, new_path, read_transcripts(transcripts).get(wavs[0].stem),
                                   out / "report" / "media")
    shared = [k for k in report["summary"] if k in originals["summary"] and k != "num_files"]
    beside = [{"group": "resynthesis", **{k: report["summary"][k] for k in shared}},
              {"group": "originals (the samples themselves)", **{k: originals["summary"][k] for k in shared}}]
    sections = {f"Conversion grid: {wavs[0].name} in every speaker and style": conversion_rows,
                f"Continuation (the generated part, after the prompt {wavs[0].name})": [cont_row]}
    write_report(out / "report", {**report, "groups": {"Resynthesis beside the originals": beside},
                                  "sections": sections}, title=f"speechkit demo: {model_dir}")
    s = report["summary"]
    summary = {"model": str(model_dir), "samples": len(wavs), "resynthesis_wer": s.get("wer"),
               "originals_wer": originals["summary"].get("wer"), "gpe": s.get("gpe"), "vde": s.get("vde"),
               "ffe": s.get("ffe"), "speaker_sim": s.get("speaker_sim"),
               "conversions": len(speakers) * max(len(styles), 1),
               "continuation": str(cont_path), "continuation_generated": str(new_path),
               "continuation_asr": cont_row["asr"], "continuation_genppl": cont_row.get("genppl"),
               "continuation_has_speech": cont_row["has_speech"],
               "real_time_factor": synth_seconds / audio_seconds if audio_seconds else None,
               "report": str(out / "report" / "report.html"), "seconds": round(time.time() - t0, 1)}
    write_json(out / "summary.json", summary, indent=2)
    return summary


def _media_row(label: str, path: Path, wav, sample_rate: int, report_dir: Path) -> dict:
    """A report row that plays ``path`` with its spectrogram (written under the report's media folder)."""
    import os

    from speechkit.metrics.report import spectrogram_png

    png = report_dir / "media" / "conversion" / f"{path.stem}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(spectrogram_png(wav.numpy(), sample_rate))
    return {"id": label, "media": {"hyp_audio": os.path.relpath(path, report_dir),
                                   "hyp_spectrogram": os.path.relpath(png, report_dir)}}


def _score_continuation(model_dir: Path, path: Path, prompt: str | None, media_dir: Path) -> dict:
    """The report row of the generated part: transcript, GenPPL given the prompt's transcript (when the bundle
    has a text LM), silero-vad speech."""
    from speechkit.metrics.folder import FolderEvalConfig, Pair
    from speechkit.metrics.scoring import run_scoring

    has_lm = (model_dir / "textlm" / "config.json").is_file()
    metrics = ("genppl", "vad") if has_lm else ("vad",)
    cfg = FolderEvalConfig(metrics=metrics, text_lm=str(model_dir / "textlm") if has_lm else None)
    row = run_scoring([{"pair": Pair(f"continuation/{path.stem}", path, prompt=prompt), "media_dir": media_dir}],
                      cfg)[0]
    if not has_lm:
        from speechkit.metrics.asr import PocketSphinxASR

        row["asr"] = PocketSphinxASR().transcribe_file(path)
    return row


def format_summary(summary: dict) -> str:
    def f(x, nd=3):
        return "n/a" if x is None else f"{x:.{nd}f}"

    out = Path(summary["report"]).parent.parent
    return "\n".join([
        f"speechkit demo with {summary['model']} ({summary['seconds']} s)",
        f"  resynthesis  {out / 'resynthesis'}/  ({summary['samples']} samples, same voice)",
        f"               WER {f(summary['resynthesis_wer'])} (originals {f(summary['originals_wer'])}), "
        f"GPE {f(summary['gpe'])}, VDE {f(summary['vde'])}, speaker similarity {f(summary['speaker_sim'])}, "
        f"real-time factor {f(summary['real_time_factor'])}",
        f"  conversion   {out / 'conversion'}/  ({summary['conversions']} speaker x style renditions of one sample)",
        f"  continuation {summary['continuation']}  (prompt + continuation; the new part alone: "
        f"{summary['continuation_generated']})",
        f"               ASR of the new part: \"{summary['continuation_asr']}\"; GenPPL "
        f"{f(summary['continuation_genppl'], 1)}; speech found by VAD: "
        f"{'yes' if summary['continuation_has_speech'] else 'no'}",
        f"  report       {summary['report']}",
    ])
