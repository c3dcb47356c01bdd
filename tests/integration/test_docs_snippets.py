"""Every snippet of docs/*.md works as shown (issue 31), and every command of the README and the docs is checked.

Python blocks run, in order, one working folder and namespace per page, on the bundled default model and small
audio made here, unless marked ``<!-- snippet: not-run (reason) -->``: those are compiled and their ``speechkit``
imports and calls checked. Shell commands are checked without doing their work: ``speechkit`` lines with the real
argument parser (and ``train`` with the composed Hydra config), scripts and recipes against their options and
stages, ``make`` against the Makefile. The convention and the rules: tests/docs_snippets.py. A failure names the
page, the line and the rule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.docs_snippets import (
    ROOT,
    check_command,
    check_name_ref,
    commands_of,
    fenced_blocks,
    name_refs,
    page_name,
    probe_scripts,
    stray_markers,
)

pytestmark = pytest.mark.slow

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]  # the README's own python blocks run in test_readme.py


def _python_blocks(path: Path):
    return [b for b in fenced_blocks(path) if b.lang in ("python", "py", "python3")]


def test_markers_are_well_formed():
    errors = [e for p in PAGES for e in stray_markers(p)]
    for path in PAGES:
        for b in fenced_blocks(path):
            if b.marker_error:
                errors.append(f"{b.page}:{b.line - 2}: marker: {b.marker_error}")
    assert not errors, "\n".join(errors)


def test_python_snippets_run_or_compile(tmp_path):
    pages, counts = [], Counter()
    for path in PAGES:
        blocks = []
        for b in _python_blocks(path):
            m = b.marker
            mode = "not-run" if path.name == "README.md" or b.marker_error or (m and m.mode == "not-run") else "run"
            blocks.append({"line": b.line, "code": b.code, "mode": mode,
                           "given": m.given if m else [], "links": m.links if m else {}})
        if blocks:
            pages.append({"page": page_name(path), "blocks": blocks})
    spec, result = tmp_path / "spec.json", tmp_path / "result.json"
    work = tmp_path / "work"
    work.mkdir()
    spec.write_text(json.dumps({"work": str(work), "pages": pages}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPEECHKIT_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "tests.docs_snippets", str(spec), str(result)], cwd=ROOT,
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0 and result.is_file(), r.stderr[-3000:]
    results = json.loads(result.read_text())
    errors = [e for res in results for e in res["errors"]]
    counts.update(res["mode"] for res in results if not res["where"].startswith("README.md"))
    print(f"\ndocs python blocks: {counts['run']} run, {counts['not-run']} compiled only "
          f"(+ {sum(res['where'].startswith('README.md') for res in results)} README blocks compiled here, "
          "run by test_readme)")
    print("  " + ", ".join(f"{res['where']} {res['mode']} {res['seconds']} s" for res in results))
    assert not errors, "\n".join(errors)
    assert counts["run"] >= 8, counts  # the extraction still finds the pages' blocks


def test_commands_are_valid_as_shown():
    commands, other = [], []
    for path in PAGES:
        found, rest = commands_of(path)
        commands += found
        other += rest
    scripts: dict[str, list[list[str]]] = {}
    for c in commands:
        if c.kind == "script":
            scripts.setdefault(c.args[0], []).extend([] if c.inline else [c.args[1:]])
    probe_scripts(scripts)
    errors = [e for c in commands for e in check_command(c)]
    counts = Counter(f"{c.kind}{' (inline)' if c.inline else ''}" for c in commands)
    print("\ncommands checked: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("shell lines not checked (other programs): " + "; ".join(f"{p}:{n} {t}" for p, n, t in other))
    assert not errors, "\n".join(errors)
    assert counts["speechkit"] >= 40 and counts["script"] >= 15 and counts["recipe"] >= 15, counts


def test_inline_speechkit_names_exist():
    refs = [r for p in PAGES for r in name_refs(p)]
    errors = [e for r in refs for e in check_name_ref(*r)]
    assert not errors, "\n".join(errors)
    assert len(refs) >= 20, refs
