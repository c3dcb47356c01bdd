"""The README's snippets run as shown: its Python blocks in order (one session, as a reader would paste them) and
its `.venv/bin/speechkit` commands, from a fresh working folder that sees the repository's checkpoints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _workdir(tmp_path: Path) -> Path:
    for name in ("checkpoints", ".venv"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def test_readme_python_snippets_run(tmp_path):
    code = "\n".join(_blocks("python"))
    assert "Resynthesizer.from_pretrained()" in code and "rs.stream(" in code and "SpeechContinuation" in code
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=_workdir(tmp_path), capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "us1_as_us2_whisper.wav").stat().st_size > 1000


def test_readme_speechkit_commands_run(tmp_path):
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith(".venv/bin/speechkit"):
                commands.append(line)
    assert len(commands) >= 2, commands
    work = _workdir(tmp_path)
    for cmd in commands:
        r = subprocess.run(cmd, shell=True, cwd=work, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
    assert (work / "report" / "report.html").is_file()
