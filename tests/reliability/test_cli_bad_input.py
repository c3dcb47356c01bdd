"""Bad input at the CLI: every command that reads a user's file gets unreadable, empty, zero-sample, NaN, wrong-type
and missing files. The rule: exit code 1 and one ``speechkit: error:`` line naming the file (or, for corpus jobs, the
file logged as failed and the job going on), no traceback, and no output file left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speechkit.cli.main import main
from tests.reliability.faults import Tally, record

BAD_AUDIO = {
    "zero bytes": lambda p: p.write_bytes(b""),
    "text named .wav": lambda p: p.write_text("not audio at all\n"),
    "truncated header": lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "),
    "zero samples": lambda p: sf.write(p, np.zeros(0, np.float32), 16000),
    "NaN samples": lambda p: sf.write(p, np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT"),
    "infinite samples": lambda p: sf.write(p, np.full(1600, np.inf, np.float32), 16000, subtype="FLOAT"),
    "a folder": lambda p: p.mkdir(),
    "missing": lambda p: None,
}


def _commands(bad, out):
    return {
        "resynth": ["resynth", str(bad), "-o", str(out), "--speaker", "us1"],
        "resynth --stream": ["resynth", str(bad), "-o", str(out), "--speaker", "us1", "--stream"],
        "continue": ["continue", str(bad), "-o", str(out), "--seconds", "0.5", "--seed", "0"],
        "vdtts": ["vdtts", str(bad), "--text", "hello", "-o", str(out.with_suffix(".mp4"))],
    }


@pytest.mark.parametrize("kind", sorted(BAD_AUDIO))
def test_commands_refuse_a_bad_input_file_by_name(tmp_path, capsys, kind):
    bad = tmp_path / "bad.wav"
    BAD_AUDIO[kind](bad)
    tally = Tally()
    for name, argv in _commands(bad, tmp_path / "out.wav").items():
        tally.cases += 1
        code = main(argv)
        err = capsys.readouterr().err
        ok = (code == 1 and err.startswith("speechkit: error:") and "Traceback" not in err and str(bad) in err
              and not (tmp_path / "out.wav").exists() and not (tmp_path / "out.mp4").exists())
        if ok:
            tally.refused += 1
        else:
            tally.failures.append(f"{name} on {kind}: exit {code}, stderr {err[-300:]!r}")
    record("CLI bad input", f"audio/video: {kind}", tally)
    assert not tally.failures, "\n".join(tally.failures)


def test_corpus_jobs_log_bad_files_and_go_on(tmp_path, capsys):
    """encode and eval folder: each bad file is logged with its reason; the good file is still done."""
    from speechkit.audio import io

    folder = tmp_path / "audio"
    folder.mkdir()
    for i, (kind, make) in enumerate(sorted(BAD_AUDIO.items())):
        if kind not in ("a folder", "missing"):
            make(folder / f"bad{i}.wav")
    io.save(folder / "good.wav", (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 150)).astype(np.float32), 16000)
    out = tmp_path / "u.jsonl"
    assert main(["encode", str(folder), "-o", str(out), "--encoder", "checkpoints/default/encoder"]) == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    errors = {line.split("\t")[0] for line in open(f"{out}.errors.tsv")}
    bad = {p.stem for p in folder.iterdir() if p.stem != "good"}
    assert ids == ["good"] and errors == bad
    code = main(["eval", "folder", "--hyp", str(folder), "--ref", str(folder), "--metrics", "f0", "--no-media",
                 "-o", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err
    if code == 1:  # refused up front, naming a bad file
        assert any(b in err for b in bad) and not (tmp_path / "report" / "report.json").exists()
    record("CLI bad input", "corpus jobs: encode + eval folder", Tally(cases=len(bad) + 1, refused=len(bad) + 1))


@pytest.mark.parametrize("argv_of", [
    lambda d: ["sequences", str(d / "bad.jsonl"), "-o", str(d / "seq")],
    lambda d: ["prepare", "manifest", str(d / "nowhere"), "-o", str(d / "m.tsv")],
    lambda d: ["encode", str(d / "bad.tsv"), "-o", str(d / "u.jsonl"), "--encoder", "checkpoints/default/encoder"],
    lambda d: ["eval", "folder", "--hyp", str(d), "--transcripts", str(d / "bad.jsonl"), "--metrics", "wer",
               "-o", str(d / "r")],
    lambda d: ["resynth", str(d / "x.wav"), "-o", str(d / "o.wav"), "--model", str(d / "bad_model")],
    lambda d: ["train", "ulm", "preset=debug", f"data.train={d / 'bad.jsonl'}", "data.num_units=10",
               f"model.text_lm={d / 'bad_model'}", f"out={d / 'run'}"],
], ids=["sequences", "prepare manifest", "encode tsv", "eval transcripts", "resynth model", "train ulm"])
def test_bad_text_inputs_and_models_are_named(tmp_path, capsys, argv_of):
    (tmp_path / "bad.jsonl").write_bytes(b'{"id": "a", "units": [1, 2\n\xff\xfe')
    (tmp_path / "bad.tsv").write_text("/root\nno-tab-here\n")
    (tmp_path / "bad_model").mkdir()
    (tmp_path / "bad_model" / "config.json").write_text("{not json")
    sf.write(tmp_path / "x.wav", np.zeros(1600, np.float32), 16000)
    argv = argv_of(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("speechkit: error:") and "Traceback" not in err, err
    assert str(tmp_path) in err, f"the error does not name the file: {err}"
    record("CLI bad input", f"text/model: {argv[0]}{' ' + argv[1] if argv[0] in ('prepare', 'eval', 'train') else ''}",
           Tally(cases=1, refused=1))
