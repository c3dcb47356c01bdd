"""The README's snippets run as shown: its Python blocks in order (one session, as a reader would paste them) and
its `.venv/bin/speechkit` commands, from a fresh working folder that sees the repository's checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_snippets import ROOT, fenced_blocks, logical_lines

pytestmark = pytest.mark.slow


def _blocks(lang: str):
    return [b for b in fenced_blocks(ROOT / "README.md") if b.lang == lang]


def _workdir(tmp_path: Path) -> Path:
    for name in ("checkpoints", ".venv"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def test_readme_python_snippets_run(tmp_path):
    code = "\n".join(b.code for b in _blocks("python"))
    assert "Resynthesizer.from_pretrained()" in code and "rs.stream(" in code and "SpeechContinuation" in code
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=_workdir(tmp_path), capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "us1_as_us2_whisper.wav").stat().st_size > 1000


def test_readme_speechkit_commands_run(tmp_path):
    commands = []
    for block in _blocks("bash"):
        for _, line in logical_lines(block.code, block.line):  # continuations joined, comments dropped
            if line.startswith(".venv/bin/speechkit"):
                commands.append(line)
    assert len(commands) >= 2, commands
    work = _workdir(tmp_path)
    for cmd in commands:
        r = subprocess.run(cmd, shell=True, cwd=work, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
    assert (work / "report" / "report.html").is_file()
