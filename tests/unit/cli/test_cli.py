"""The `speechkit` console script as users (and outside checks) call it: .venv/bin/speechkit."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechkit.audio import io
from speechkit.data.manifest import read_tsv

SPEECHKIT = str(Path(sys.executable).parent / "speechkit")


def run(*args):
    return subprocess.run([SPEECHKIT, *args], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands_with_examples():
    out = run("--help")
    assert out.returncode == 0
    assert "prepare" in out.stdout and "examples:" in out.stdout
    for sub in (["prepare", "--help"], ["prepare", "manifest", "--help"], ["prepare", "mini-expresso", "--help"]):
        r = run(*sub)
        assert r.returncode == 0 and "examples:" in r.stdout and "speechkit prepare" in r.stdout


def _all_parsers():
    import argparse

    from speechkit.cli.main import build_parser

    todo, seen = [("speechkit", build_parser())], []
    while todo:
        name, parser = todo.pop()
        seen.append((name, parser))
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                todo += [(f"{name} {n}", sp) for n, sp in a.choices.items()]
    return seen


def test_every_help_shows_each_default_once_and_one_example_per_line():
    import re

    parsers = _all_parsers()
    assert len(parsers) > 20
    for name, parser in parsers:
        text = parser.format_help()
        flat = re.sub(r"\s+", " ", text)
        assert not re.search(r"\(default[: ][^()]*\)\s*\(default: ", flat), f"{name}: a default shown twice"
        assert "(default: None)" not in flat and "(default: False)" not in flat, f"{name}: an empty default shown"
        examples = text.split("examples:", 1)[1].split("\n\n", 1)[0] if "examples:" in text else ""
        for line in examples.splitlines():  # a run of spaces inside an example only ever precedes a # comment
            assert not re.search(r"\S {4,}[^#\s]", line), f"{name}: examples merged into one line: {line!r}"


def test_prepare_manifest_writes_tsv_and_errors_file(tmp_path):
    audio = tmp_path / "audio"
    io.save(audio / "x.wav", np.zeros(1600, np.float32), 16000)
    io.save(audio / "sub" / "y.flac", np.zeros(800, np.float32), 8000)
    (audio / "z.wav").write_bytes(b"garbage" * 10)
    out = run("prepare", "manifest", str(audio), "-o", str(tmp_path / "m.tsv"))
    assert out.returncode == 0, out.stderr
    root, entries = read_tsv(tmp_path / "m.tsv")
    assert root == audio.resolve()
    assert [(e.path, e.num_samples) for e in entries] == [("sub/y.flac", 800), ("x.wav", 1600)]
    errors = (tmp_path / "m.errors.tsv").read_text()
    assert errors.startswith("z.wav\t") and "not a readable audio file" in errors


def test_user_errors_are_one_line_without_traceback(tmp_path):
    out = run("prepare", "manifest", str(tmp_path / "missing"), "-o", str(tmp_path / "m.tsv"))
    assert out.returncode == 1
    assert out.stderr.strip() == f"speechkit: error: {tmp_path / 'missing'}: not a directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run("prepare", "manifest", str(empty), "-o", str(tmp_path / "m.tsv"))
    assert out.returncode == 1 and "no readable audio files" in out.stderr and "Traceback" not in out.stderr
    assert run("no-such-command").returncode == 2


def test_prepare_mini_expresso_cli(tmp_path):
    out = run("prepare", "mini-expresso", str(tmp_path / "c"), "--minutes", "0.1", "--speakers", "us3",
              "--styles", "slow", "--conversations", "0")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c" / "read_transcriptions.txt").read_text().startswith("us3_slow_00001\t")
    assert list((tmp_path / "c" / "audio_48khz" / "read" / "us3" / "slow" / "base").glob("*.wav"))


def test_prepare_expresso_cli(tmp_path, mini_expresso):
    out = run("prepare", "expresso", str(mini_expresso), str(tmp_path / "seg"), "--jobs", "1")
    assert out.returncode == 0, out.stderr
    for split in ("train", "dev", "test"):
        assert (tmp_path / "seg" / f"{split}.jsonl").read_text().strip()
    assert run("prepare", "expresso", str(tmp_path / "nothing"), str(tmp_path / "x")).returncode == 1


def test_resynth_checks_paths_before_loading_anything(tmp_path):
    """A typo or a file name given for several inputs is refused at once (no model loads), naming the path and
    the rule; nothing is written."""
    for i in (1, 2):
        io.save(tmp_path / f"a{i}.wav", np.full(1600, 0.1, dtype=np.float32), 16000)
    r = run("resynth", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.wav"), "--model", str(tmp_path / "none"))
    assert r.returncode == 1 and f"{tmp_path / 'nope.wav'}: no such file or folder" in r.stderr
    r = run("resynth", str(tmp_path / "a1.wav"), str(tmp_path / "a2.wav"), "-o", str(tmp_path / "single.wav"),
            "--model", str(tmp_path / "none"))
    assert r.returncode == 1 and "names a file but 2 inputs are given: give an output folder" in r.stderr
    r = run("resynth", str(tmp_path), "-o", str(tmp_path / "one.wav"), "--model", str(tmp_path / "none"))
    assert r.returncode == 1 and "is a folder: give an output folder" in r.stderr
    assert not (tmp_path / "single.wav").exists() and not (tmp_path / "one.wav").exists()
    assert "Traceback" not in r.stderr  # the --model folder is missing too: the path errors come first
    r = run("continue", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "c.wav"), "--model", str(tmp_path / "none"))
    assert r.returncode == 1 and f"{tmp_path / 'nope.wav'}: no such file" in r.stderr


def test_a_former_option_name_is_refused_with_the_new_one():
    r = run("encode", "in.wav", "-o", "out.jsonl", "--workers", "2")
    assert r.returncode == 2 and "--workers is now --jobs" in r.stderr
    assert "--jobs N" in run("encode", "--help").stdout


def test_trainers_share_one_name_for_the_run_folder_and_validation_interval():
    """``out=`` and ``train.valid_every=`` in every trainer config; the unit-LM trainers' former spellings are refused
    with the new name."""
    from speechkit.cli.train import TASKS, compose

    for task in TASKS:
        cfg = compose(task, [])
        assert "out" in cfg.keys(), f"train {task}: no top-level out"  # (its value is ??? until given)
        assert not {"out_dir", "eval_every"} & set(cfg.get("train", {}).keys()), task
    r = run("train", "ulm", "preset=debug", "train.out_dir=runs/x")
    assert r.returncode == 1 and "train.out_dir= is now out=" in r.stderr
    r = run("train", "textlm", "preset=debug", "train.eval_every=5")
    assert r.returncode == 1 and "train.eval_every= is now train.valid_every=" in r.stderr


def test_every_trainer_config_comes_from_its_dataclass():
    """One source of truth: each task's YAML holds no values (only the schema and the presets), so the composed
    defaults are the dataclass's; an unknown key or an ill-typed value is refused when the command line is read;
    ``--print-config`` (anywhere among the overrides) prints the composed config."""
    import dataclasses

    import yaml

    from speechkit.cli.train import SCHEMAS, TASKS, compose, conf_dir, schema

    assert set(SCHEMAS) == set(TASKS)
    for task in TASKS:
        text = yaml.safe_load((conf_dir(task) / "config.yaml").read_text())
        assert set(text) == {"defaults"}, f"{task}: config.yaml sets values {sorted(set(text) - {'defaults'})}"
        assert f"{task}_schema" in text["defaults"], task
        cfg, cls = compose(task, []), schema(task)
        assert [f.name for f in dataclasses.fields(cls)] == [k for k in cfg.keys() if k != "preset"], task
    r = run("train", "vocos", "out=runs/v", "--print-config", "optim.lr=0.123", "data.audio=wavs")
    assert r.returncode == 0, r.stderr
    printed = yaml.safe_load(r.stdout)
    assert printed["optim"]["lr"] == 0.123 and printed["out"] == "runs/v" and printed["data"]["audio"] == "wavs"
    assert printed["optim"]["max_steps"] == schema("vocos")().optim.max_steps  # a default, from the dataclass
    r = run("train", "unit_mel", "out=x", "model.nope=1")
    assert r.returncode == 1 and "nope" in r.stderr and "UnitMelModelConfig" in r.stderr
    r = run("train", "unit_mel", "out=x", "optim.lr=fast")
    assert r.returncode == 1 and "optim.lr=fast" in r.stderr and "Traceback" not in r.stderr


def test_train_help_and_unknown_options_after_the_task():
    r = run("train", "vocos", "--help")
    assert r.returncode == 0 and "--print-config" in r.stdout
    r = run("train", "vocos", "out=x", "--nope")
    assert r.returncode == 1 and "unknown option --nope" in r.stderr


def test_shard_option_is_one_parser_for_every_command(capsys):
    """encode, prepare story-speech and data_prep/dpo_pairs.py share speechkit.cli.formatting.shard: i/n or a usage
    error naming the rule, never a traceback."""
    from speechkit.cli.formatting import shard
    from speechkit.cli.main import main

    assert shard("2/4") == (2, 4) and shard("0/1") == (0, 1)
    for bad, why in (("3", "must look like i/n"), ("a/b", "must look like i/n"), ("4/4", "needs 0 <= i < n")):
        with pytest.raises(SystemExit) as e:
            main(["prepare", "story-speech", "out", "--shard", bad])
        assert e.value.code == 2 and why in capsys.readouterr().err
