"""Resource faults: a full disk during a save, a folder that cannot be written, two writers of one output, a system
binary that is missing or vanishes. Each gives a clear error and keeps the previous good state."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from speechkit.cli.main import main
from speechkit.errors import SpeechkitError
from tests.reliability.faults import record_outcome


def _no_temp_files(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".tmp" in p.name]
    assert not left, f"temporary files left behind: {left}"


def _full_disk(path_arg: int = 1, keyword: str | None = None):
    """A stand-in for a writer that writes half its output, then hits ENOSPC (as a real full disk would)."""

    def writer(*args, **kwargs):
        target = kwargs.get(keyword) if keyword else args[path_arg]
        with open(target, "wb") as f:
            f.write(b"\x00" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    return writer


def test_full_disk_during_a_training_checkpoint_keeps_the_last_good_one(tmp_path, monkeypatch):
    from speechkit.train.checkpoint import load_training_state, save_training_state

    model = torch.nn.Linear(3, 2)
    save_training_state(tmp_path, step=5, model=model, config={})
    before = (tmp_path / "checkpoint_last.pt").read_bytes()
    with torch.no_grad():
        model.weight.add_(1)
    monkeypatch.setattr(torch, "save", _full_disk())
    with pytest.raises(OSError, match="No space left"):
        save_training_state(tmp_path, step=6, model=model, config={})
    assert (tmp_path / "checkpoint_last.pt").read_bytes() == before
    assert load_training_state(tmp_path)["step"] == 5
    _no_temp_files(tmp_path)
    record_outcome("resource faults", "full disk: training checkpoint")


def test_full_disk_during_a_model_export_keeps_the_previous_model(tmp_path, monkeypatch):
    import safetensors.torch

    from speechkit.train.checkpoint import load_pretrained, save_pretrained

    save_pretrained(tmp_path / "m", {"w": torch.ones(3)}, {"kind": "x"})
    monkeypatch.setattr(safetensors.torch, "save_file", _full_disk())
    with pytest.raises(OSError, match="No space left"):
        save_pretrained(tmp_path / "m", {"w": torch.zeros(3)}, {"kind": "x"})
    state, config = load_pretrained(tmp_path / "m")
    assert torch.equal(state["w"], torch.ones(3)) and config == {"kind": "x"}
    _no_temp_files(tmp_path)
    record_outcome("resource faults", "full disk: model export")


def test_full_disk_at_fsync_of_a_text_output(tmp_path, monkeypatch):
    import os

    from speechkit.data.manifest import UnitRecord, read_units_jsonl, write_units_jsonl

    p = write_units_jsonl(tmp_path / "u.jsonl", [UnitRecord("a", "", [1, 2])])

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        write_units_jsonl(p, [UnitRecord("b", "", [3])])
    monkeypatch.undo()
    assert [r.id for r in read_units_jsonl(p)] == ["a"]
    _no_temp_files(tmp_path)
    record_outcome("resource faults", "full disk: text output (fsync)")


def test_cli_reports_a_full_disk_in_one_line_and_keeps_the_old_output(tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from speechkit.audio import io

    src = io.save(tmp_path / "in.wav", (0.2 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 200)).astype(np.float32),
                  16000)
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous good output")
    monkeypatch.setattr(sf, "write", _full_disk(0))
    code = main(["resynth", str(src), "-o", str(out), "--speaker", "us1"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "Traceback" not in err
    assert out.read_bytes() == b"previous good output"
    _no_temp_files(tmp_path)
    record_outcome("resource faults", "full disk: CLI resynth")


def test_unwritable_output_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import tempfile

    from speechkit.audio import io

    src = io.save(tmp_path / "in.wav", np.full(8000, 0.1, np.float32), 16000)
    locked = tmp_path / "locked"
    locked.mkdir()

    def mkstemp(*a, dir=None, **k):  # what a read-only folder does (the suite may run as root, which chmod cannot stop)
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code = main(["resynth", str(src), "-o", str(locked / "out.wav"), "--speaker", "us1"])
    err = capsys.readouterr().err
    assert code == 1 and "Permission denied" in err and str(locked) in err
    assert list(locked.iterdir()) == []
    record_outcome("resource faults", "read-only output folder")


def test_two_writers_of_one_units_file_the_second_is_refused(tmp_path, capsys):
    from speechkit.utils.files import exclusive

    out = tmp_path / "units.jsonl"
    out.write_text("")
    with exclusive(out):  # another process is encoding into it
        code = main(["encode", str(tmp_path), "-o", str(out), "--resume", "--encoder", "checkpoints/default/encoder"])
    err = capsys.readouterr().err
    assert code == 1 and "another process is writing" in err and str(out) in err
    assert out.read_text() == ""
    record_outcome("resource faults", "two writers: units file")


def test_two_trainings_in_one_run_folder_the_second_is_refused(tmp_path, capsys):
    from speechkit.utils.files import exclusive

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint_last.pt").write_bytes(b"the first job's")
    with exclusive(run):
        code = main(["train", "kmeans", "preset=debug", f"data={tmp_path}", f"out={run}"])
    err = capsys.readouterr().err
    assert code == 1 and "another process is writing" in err
    assert (run / "checkpoint_last.pt").read_bytes() == b"the first job's"
    record_outcome("resource faults", "two writers: training run folder")


def test_the_lock_dies_with_its_process(tmp_path):
    """A job killed with -9 never leaves a stale lock: the next writer gets it at once."""
    import multiprocessing as mp
    import signal

    from speechkit.utils.files import exclusive

    out = tmp_path / "units.jsonl"
    out.write_text("")
    ready = mp.get_context("fork").Event()

    def hold():
        with exclusive(out):
            ready.set()
            signal.pause()

    p = mp.get_context("fork").Process(target=hold)
    p.start()
    assert ready.wait(30)
    with pytest.raises(SpeechkitError, match="another process"), exclusive(out):
        pass
    p.kill()
    p.join()
    with exclusive(out):
        pass
    record_outcome("resource faults", "lock released by kill -9")


@pytest.mark.parametrize("binary", ["espeak-ng", "mbrola"])
def test_missing_system_binary_is_named(monkeypatch, binary):
    from speechkit.data import phonemize
    from speechkit.synth import tts

    monkeypatch.setattr(shutil, "which", lambda name: None)
    phonemize.espeak_binary.cache_clear()
    tts.mbrola_available.cache_clear()
    try:
        with pytest.raises(SpeechkitError, match=binary.split("-")[0]):
            if binary == "espeak-ng":
                phonemize.espeak_pho("hello", "mb-us1")
            else:
                tts.mbrola_render("_ 100\n", "us1", "/tmp/never.wav")
    finally:
        monkeypatch.undo()
        phonemize.espeak_binary.cache_clear()
        tts.mbrola_available.cache_clear()
    record_outcome("resource faults", f"missing binary: {binary}")


def test_binary_that_vanishes_mid_job_is_named(monkeypatch):
    from speechkit.data import phonemize

    monkeypatch.setattr(phonemize, "espeak_binary", lambda: "/nonexistent/espeak-ng")
    with pytest.raises(SpeechkitError, match="/nonexistent/espeak-ng"):
        phonemize.espeak_pho("hello", "mb-us1")
    record_outcome("resource faults", "binary vanished mid-job")


def test_resume_log_drops_steps_after_the_checkpoint_and_a_torn_line(tmp_path):
    """Regression: a run killed after its last checkpoint logged steps that the resumed run logs again."""
    from speechkit.train.checkpoint import resume_log

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "train_loss": 1.0}) + "\n" for s in range(1, 6)) + '{"step": 6, "tr')
    resume_log(log, 3)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
