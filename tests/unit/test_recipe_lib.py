"""recipes/lib.sh, the machinery the recipes share: stage ranges by name or number, option parsing, the usage text,
the exit codes (1: die, 2: a bad command line) and the speechkit lookup; and every recipes/*/run.sh really uses it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "recipes" / "lib.sh"
RECIPES = sorted((ROOT / "recipes").glob("*/run.sh"))
SOURCE_LINE = 'source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"'

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

FAKE = """#!/usr/bin/env bash
# A fake recipe: four stages.
#
#   recipes/fake/run.sh --stage b   # from b on

source "{lib}"

STAGES=(a b c d)
OPTIONS=(num_units text_lm)
FLAGS=(skip_bad)
num_units=7
text_lm=""
skip_bad=""
parse_options "$@"
echo "num_units=$num_units text_lm=$text_lm skip_bad=$skip_bad SK=$SK"
for s in a b c d; do
  if run_stage "$s"; then echo "ran $s"; fi
done
[[ ${{FAIL:-}} == die ]] && die "the corpus is missing"
[[ ${{FAIL:-}} == one_of ]] && one_of --preset "$num_units" debug small base
echo done
"""


@pytest.fixture()
def fake(tmp_path):
    script = tmp_path / "recipes" / "fake" / "run.sh"
    script.parent.mkdir(parents=True)
    script.write_text(FAKE.format(lib=LIB))

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if k not in ("SPEECHKIT", "FAIL")} | env
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=30,
                              env=full_env, cwd=tmp_path)

    return run


def ran(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ran ")]


def test_stage_range_by_name_and_number(fake):
    everything = fake()
    assert everything.returncode == 0, everything.stderr
    assert ran(everything) == ["a", "b", "c", "d"]
    assert [line for line in everything.stdout.splitlines() if line.startswith("== ")] == ["== a", "== b", "== c",
                                                                                          "== d"]
    assert ran(fake("--stage", "b", "--stop-stage", "c")) == ["b", "c"]
    assert ran(fake("--stage", "1", "--stop-stage", "2")) == ["b", "c"]
    assert ran(fake("--stage", "c")) == ["c", "d"]
    assert ran(fake("--stop-stage", "0")) == ["a"]
    one = fake("--stage", "d", "--stop-stage", "d")
    assert ran(one) == ["d"] and "== a" not in one.stdout


@pytest.mark.parametrize("args, message", [
    (["--stage", "nope"], "recipes/fake: unknown stage 'nope' (stages: a b c d; or their numbers, 0 to 3)"),
    (["--stop-stage", "4"], "recipes/fake: unknown stage '4'"),
    (["--stage", "c", "--stop-stage", "b"], "recipes/fake: --stage c comes after --stop-stage b"),
    (["--stage"], "recipes/fake: --stage needs a value"),
    (["--num-units"], "recipes/fake: --num-units needs a value"),
])
def test_bad_stages_and_missing_values_are_usage_errors(fake, args, message):
    proc = fake(*args)
    assert proc.returncode == 2 and message in proc.stderr
    assert "ran " not in proc.stdout and "done" not in proc.stdout


@pytest.mark.parametrize("bad", ["--nope", "positional", "--skip_bad", "-x"])
def test_unknown_option_prints_the_usage_and_exits_2(fake, bad):
    proc = fake("--num-units", "3", bad)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[0] == "A fake recipe: four stages."
    assert proc.stderr.splitlines()[-1] == f"recipes/fake: unknown option '{bad}'"


def test_options_flags_and_speechkit(fake):
    proc = fake("--num-units", "12", "--text-lm", "a b", "--skip-bad", "--stop-stage", "a")
    assert proc.returncode == 0, proc.stderr
    assert "num_units=12 text_lm=a b skip_bad=--skip-bad SK=.venv/bin/speechkit" in proc.stdout
    proc = fake("--stop-stage", "a", SPEECHKIT="python -m speechkit.cli.main")
    assert "num_units=7 text_lm= skip_bad= SK=python -m speechkit.cli.main" in proc.stdout


def test_help_prints_the_header_and_the_options(fake):
    for flag in ("--help", "-h"):
        proc = fake("--num-units", "3", flag)
        assert proc.returncode == 0 and proc.stderr == ""
        assert proc.stdout.splitlines() == [
            "A fake recipe: four stages.", "", "  recipes/fake/run.sh --stage b   # from b on",
            "options: --stage --stop-stage --num-units --text-lm --skip-bad --help"]


def test_die_and_one_of(fake):
    proc = fake(FAIL="die")
    assert proc.returncode == 1 and proc.stderr == "recipes/fake: the corpus is missing\n"
    assert "ran d" in proc.stdout and "done" not in proc.stdout
    proc = fake("--num-units", "large", FAIL="one_of")
    assert proc.returncode == 2
    assert proc.stderr == "recipes/fake: --preset must be debug, small or base. Found 'large'\n"
    assert fake("--num-units", "small", FAIL="one_of").stdout.endswith("done\n")


def test_every_recipe_uses_the_library():
    assert {p.parent.name for p in RECIPES} >= {"default", "hubert", "own_data", "twist", "vdtts", "vocoder"}
    for script in RECIPES:
        text = script.read_text()
        assert SOURCE_LINE in text.splitlines(), script
        # the machinery lives in lib.sh only
        for own in ("set -euo pipefail", "while [[ $# -gt 0 ]]", "index()", "usage()", "die()", "SPEECHKIT:-"):
            assert own not in text, (script, own)


@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.parent.name)
def test_recipe_help_and_errors(script):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(script.relative_to(ROOT)), *args], capture_output=True, text=True,
                              timeout=30, cwd=ROOT, env={**os.environ, "SPEECHKIT": "false", "PYTHON": "false"})

    helped = run("--help")
    assert helped.returncode == 0 and helped.stderr == ""
    header = script.read_text().splitlines()[1].removeprefix("# ")
    assert helped.stdout.splitlines()[0] == header
    assert re.search(r"^options: --stage --stop-stage ", helped.stdout, re.M)
    name = f"recipes/{script.parent.name}"
    unknown = run("--no-such-option")
    assert unknown.returncode == 2 and unknown.stderr.splitlines()[-1] == f"{name}: unknown option '--no-such-option'"
    stage = run("--stage", "no_such_stage")
    assert stage.returncode == 2 and f"{name}: unknown stage 'no_such_stage'" in stage.stderr
    # the header documents every stage the script has
    stages = re.search(r"\(stages: ([^;]+);", stage.stderr).group(1).split()
    listed = re.findall(r"^\s+(\d+) ([a-z_0-9]+)\s", helped.stdout, re.M)
    assert [(int(i), s) for i, s in listed] == list(enumerate(stages))
