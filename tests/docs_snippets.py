"""Snippets of the README and docs/*.md, and the checks that they work as shown.

Used by ``tests/integration/test_readme.py`` (which runs the README's snippets) and
``tests/integration/test_docs_snippets.py`` (which runs or checks every page's).

The marker convention. A fenced ```python block runs as shown, in a fresh working folder of its own page (where
``checkpoints/`` is the repository's), after the page's earlier blocks, in one namespace (as a reader pastes them).
An HTML comment on the line right before the fence (mkdocs does not render it) changes that::

    <!-- snippet: not-run (needs the official HuBERT checkpoint, a download) -->
        compiled, and every ``speechkit`` name it imports must exist; calls of those names must bind to their
        signatures. The reason in parentheses is required.
    <!-- snippet: run; given: wav, units, durations; link: bundle -> checkpoints/default -->
        runs after the test has provided the *given* names (variables or files in the working folder, defined in
        ``GIVEN`` below: what the page says the reader already has) and made each *link* path of the working
        folder point at a file or folder of the repository (a stand-in for a model the page's earlier steps
        would have trained).

Shell lines (```bash / ```sh / ```shell blocks, ``$ `` lines of ```console blocks, and `inline code`) that start
with ``speechkit``, ``python -m speechkit``, ``torchrun ... -m speechkit.cli.main``, ``make``, ``bash recipes/...``,
``recipes/.../run.sh`` or ``python data_prep|eval|benchmarks/...`` are checked without doing their work (prefixes
such as ``nice -n 10``, ``env VAR=x``, ``VAR=x`` are skipped; ``\\`` continuations joined; ``for V in A B`` makes
``$V`` read ``A``; ``[--optional args]`` brackets dropped); see :func:`check_command`. Blocks without a language
(output, layouts) and other languages (json) are not commands. The rules a failure names:

    speechkit-cli      the real argument parser rejects the line (``--metrics`` names are checked too)
    train-config       ``speechkit train TASK overrides``: Hydra cannot compose them, or a required value is unset
    script-missing / script-help / script-args / script-option / script-choice
                       the script is missing, its --help fails, its argparse parser rejects the arguments (the
                       script runs as __main__ and stops right after parsing), or (inline fragments) an option is
                       not in its usage
    recipe-missing / recipe-option / recipe-stage / recipe-hydra-args
                       the recipe is missing, has no such option or stage, or a ``--*-args`` override does not
                       compose with the task that stage trains
    make-target        no such Makefile target
    path-missing       a ``checkpoints/...`` argument that the repository does not ship
    python-run / python-compile / python-import / python-signature / marker / name-ref
                       a block fails, does not compile, imports a missing speechkit name, calls one with arguments
                       its signature refuses, has a malformed marker, or an inline `speechkit.x.y` does not exist
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
SCRIPT_DIRS = ("data_prep/", "eval/", "benchmarks/")
SAMPLE = "checkpoints/default/samples/us1_default_00156.wav"  # 2.4 s of the bundle's read speech, 16 kHz


# ---------------------------------------------------------------------------------------------------------- blocks

@dataclass
class Marker:
    mode: str  # "run" or "not-run"
    reason: str = ""
    given: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


@dataclass
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the block's first code line
    lang: str
    code: str
    marker: Marker | None = None
    marker_error: str | None = None


def page_name(path: Path) -> str:
    """The page as failures name it: relative to the repository root."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


MARKER_RE = re.compile(r"^\s*<!--\s*snippet:(.*?)-->\s*$")


def parse_marker(text: str) -> Marker:
    """``run[; given: a, b][; link: path -> target, ...]`` or ``not-run (reason)``; ValueError when malformed."""
    if text.startswith("not-run"):
        m = re.fullmatch(r"not-run\s*\((.+)\)", text, re.S)
        if not m:
            raise ValueError("a not-run marker needs its reason: not-run (REASON)")
        return Marker("not-run", reason=m.group(1).strip())
    clauses = [c.strip() for c in text.split(";")]
    head = clauses[0]
    if head != "run":
        raise ValueError(f"expected 'run' or 'not-run (reason)', found {head!r}")
    marker = Marker("run")
    for clause in clauses[1:]:
        key, _, value = clause.partition(":")
        items = [v.strip() for v in value.split(",") if v.strip()]
        if key.strip() == "given" and items:
            marker.given += items
        elif key.strip() == "link" and items:
            for item in items:
                path, arrow, target = item.partition("->")
                if not arrow or not path.strip() or not target.strip():
                    raise ValueError(f"link {item!r} is not 'path -> target'")
                marker.links[path.strip()] = target.strip()
        else:
            raise ValueError(f"unknown clause {clause!r} (given: NAMES or link: PATH -> TARGET)")
    return marker


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with its language, first code line and marker."""
    page = page_name(path)
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        block = Block(page, start + 2, lang, "\n".join(lines[start + 1 : j]) + "\n")
        prev = lines[start - 1] if start else ""
        mm = MARKER_RE.match(prev)
        if mm:
            try:
                block.marker = parse_marker(mm.group(1).strip())
            except ValueError as e:
                block.marker_error = str(e)
        blocks.append(block)
        i = j + 1
    return blocks


def stray_markers(path: Path) -> list[str]:
    """Markers that are not right before a fenced python block (they would silently do nothing)."""
    lines = path.read_text().splitlines()
    errors = []
    for n, line in enumerate(lines):
        if re.match(r"\s*<!--\s*snippet:", line):
            nxt = lines[n + 1] if n + 1 < len(lines) else ""
            if not MARKER_RE.match(line):
                errors.append(f"{page_name(path)}:{n + 1}: marker: not one '<!-- snippet: ... -->' line")
            elif not re.match(r"^\s*```+\s*python\b", nxt):
                errors.append(f"{page_name(path)}:{n + 1}: marker: not right before a ```python block")
    return errors


def inline_spans(path: Path) -> list[tuple[int, str]]:
    """`inline code` outside fenced blocks (also where it wraps onto the next line), with its first line."""
    lines, in_fence = [], None
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m:
            in_fence = None if in_fence and m.group(1).startswith(in_fence) else (in_fence or m.group(1))
            lines.append("")
        else:
            lines.append("" if in_fence else line)
    text = "\n".join(lines)
    return [(text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()))
            for m in re.finditer(r"(?<!`)`((?:[^`\n]|\n(?!\s*\n))+)`(?!`)", text)]


# ------------------------------------------------------------------------------------------------- shell commands

def strip_comment(line: str) -> str:
    """The line without a ``# comment`` (a ``#`` at the start of a word, outside quotes), as the shell reads it."""
    quote, prev = None, " "
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev.isspace():
            return line[:i]
        prev = ch
    return line


def logical_lines(code: str, first_line: int) -> list[tuple[int, str]]:
    """Lines of a shell block with ``\\`` continuations joined (as bash joins them) and comments removed."""
    out, buf, start = [], "", None
    for n, line in enumerate(code.splitlines(), first_line):
        if start is None:
            start = n
        if strip_comment(buf + line).rstrip().endswith("\\"):
            buf += strip_comment(buf + line).rstrip()[len(buf):-1]
            continue
        buf += line
        text = strip_comment(buf).strip()
        if text:
            out.append((start, text))
        buf, start = "", None
    if buf.strip():
        out.append((start, strip_comment(buf).strip()))
    return out


def simple_commands(text: str, loop_vars: dict[str, str]) -> list[list[str]]:
    """A logical line split at ``; | && ||`` into argument lists, ``for VAR in A B; do`` remembered in
    ``loop_vars`` (``$VAR`` then reads ``A``), ``$PWD`` the repository root, ``[optional]`` brackets removed."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lex.whitespace_split, lex.commenters = True, ""
    try:
        tokens = list(lex)
    except ValueError:  # unbalanced quotes
        return [[text]]
    commands, cur = [], []
    for tok in tokens + [";"]:
        if tok and set(tok) <= set(";&|()"):
            if cur:
                commands.append(cur)
            cur = []
        else:
            cur.append(tok)
    result = []
    for argv in commands:
        while argv and argv[0] in ("do", "then", "else", "done", "fi"):
            argv = argv[1:]
        if not argv:
            continue
        if argv[0] == "for" and len(argv) >= 4 and argv[2] == "in":
            loop_vars[argv[1]] = argv[3]
            continue
        subst = dict(loop_vars, PWD=str(ROOT))
        argv = [re.sub(r"\$\{?(\w+)\}?", lambda m, subst=subst: subst.get(m.group(1), m.group(0)), a)
                for a in argv]
        argv = [a[1:] if a.startswith("[") else a for a in argv]
        argv = [a[:-1] if a.endswith("]") and "[" not in a else a for a in argv]
        result.append([a for a in argv if a])
    return result


def strip_prefixes(argv: list[str]) -> list[str]:
    """Without ``VAR=value``, ``env [VAR=value]``, ``nice -n N``, ``timeout N``, ``time``, ``sudo``."""
    while argv:
        if re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0]) or argv[0] in ("env", "time", "sudo", "exec"):
            argv = argv[1:]
        elif argv[0] == "nice":
            argv = argv[3:] if len(argv) > 2 and argv[1] == "-n" else argv[1:]
        elif argv[0] == "timeout" and len(argv) > 1:
            argv = argv[2:]
        else:
            break
    return argv


def classify(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(kind, args)``: kind is speechkit, script, recipe or make; ``None`` for a command not checked here."""
    argv = strip_prefixes(argv)
    if not argv:
        return None
    prog = argv[0]
    if prog in ("speechkit", ".venv/bin/speechkit"):
        return "speechkit", argv[1:]
    if prog == "torchrun" or re.fullmatch(r"(\.venv/bin/)?python(3(\.\d+)?)?", prog):
        for i, a in enumerate(argv):
            if a == "-m" and i + 1 < len(argv):
                if argv[i + 1] in ("speechkit", "speechkit.cli.main"):
                    return "speechkit", argv[i + 2 :]
                return None
            if prog != "torchrun" and not a.startswith("-") and i > 0:
                return ("script", argv[i:]) if a.startswith(SCRIPT_DIRS) else None
        return None
    if prog == "bash" and len(argv) > 1 and argv[1].startswith("recipes/"):
        return "recipe", argv[1:]
    if prog.startswith("recipes/") and prog.endswith("run.sh"):
        return "recipe", argv
    if prog == "make":
        return "make", argv[1:]
    return None


@dataclass
class Command:
    page: str
    line: int
    kind: str
    args: list[str]
    text: str
    inline: bool = False

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def commands_of(path: Path) -> tuple[list[Command], list[tuple[str, int, str]]]:
    """The checkable commands of a page (fenced shell blocks and inline spans), and the other shell lines."""
    page = page_name(path)
    found, other = [], []
    for block in fenced_blocks(path):
        if block.lang not in SHELL_LANGS:
            continue
        loop_vars: dict[str, str] = {}
        for line, text in logical_lines(block.code, block.line):
            if block.lang == "console":  # `$ command` lines; the rest is output
                if not text.startswith("$ "):
                    continue
                text = text[2:]
            for argv in simple_commands(text, loop_vars):
                c = classify(argv)
                if c:
                    found.append(Command(page, line, c[0], c[1], text))
                else:
                    other.append((page, line, " ".join(argv)))
    for line, span in inline_spans(path):
        if not re.match(r"(\.venv/bin/)?(speechkit|python|make|bash|recipes/|torchrun|nice|env|\.\.\. )\b", span) \
                and not re.match(r"(data_prep|eval|benchmarks)/\S+\.py\b", span) \
                and not (span.split()[0] in _subparsers(speechkit_parser()) and " --" in span):
            continue
        for argv in simple_commands(span, {}):
            if argv[0] == "..." and len(argv) > 1:  # `... eval/x.py --opt`: the start elided
                argv = argv[1:]
            if re.fullmatch(r"[\w/]+\.py", argv[0]) and argv[0].startswith(SCRIPT_DIRS):  # `eval/x.py --opt`
                argv = ["python", *argv]
            elif argv[0] in _subparsers(speechkit_parser()) and any(a.startswith("--") for a in argv):
                argv = ["speechkit", *argv]  # `resynth --stream`, `eval folder --metrics f0`
            c = classify(argv)
            if c:
                found.append(Command(page, line, c[0], c[1], span, inline=True))
    return found, other


# ------------------------------------------------------------------------------------------------ command checks

@functools.cache
def speechkit_parser():
    from speechkit.cli.main import build_parser

    return build_parser()


def _subparsers(parser) -> dict:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _compose_errors(task: str, overrides: list[str], require_all: bool) -> str | None:
    from omegaconf import OmegaConf

    from speechkit.cli.train import compose
    from speechkit.errors import SpeechkitError

    try:
        cfg = compose(task, overrides)
    except SpeechkitError as e:
        return str(e)
    if require_all:
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            return f"train {task}: required config values not set: {', '.join(missing)}"
    return None


def check_speechkit(cmd: Command) -> list[str]:
    """The real CLI parser accepts the arguments (``parse_args``); ``train`` composes its Hydra config with the
    overrides and (for a full command) every required value set. An inline span, often a fragment, only has its
    subcommands and options checked."""
    import contextlib
    import io

    parser = speechkit_parser()
    args = [a for a in cmd.args if a != "..."]
    if cmd.inline:
        p, chain = parser, []
        positionals = []
        for a in args:
            if a.startswith("-"):
                opt = a.split("=", 1)[0]
                known = {s for act in p._actions for s in act.option_strings}
                if opt not in known:
                    return [f"speechkit-cli: `speechkit {' '.join(chain)}` has no option {opt}"]
            elif a in _subparsers(p):
                p = _subparsers(p)[a]
                chain.append(a)
            else:
                positionals.append(a)
        if chain[:1] == ["train"] and positionals:
            task, overrides = positionals[0], [a for a in positionals[1:] if "=" in a]
            from speechkit.cli.train import TASKS

            if re.fullmatch(r"[A-Z][A-Z0-9_]*", task):  # a placeholder: `speechkit train TASK`
                return []
            if task not in TASKS:
                return [f"speechkit-cli: no train task {task!r}"]
            err = _compose_errors(task, overrides, require_all=False)
            return [f"train-config: {err}"] if err else []
        return []
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            ns = parser.parse_args(args)
    except SystemExit as e:
        if e.code in (0, None):  # --help
            return []
        return [f"speechkit-cli: {err.getvalue().strip().splitlines()[-1] if err.getvalue() else e}"]
    if getattr(ns, "command", None) == "train":
        from speechkit.cli.train import split_overrides

        if {"-h", "--help"} & set(ns.overrides):
            return []
        overrides, printing = split_overrides(ns.overrides)
        msg = _compose_errors(ns.task, overrides, require_all=not printing)
        return [f"train-config: {msg}"] if msg else []
    if isinstance(getattr(ns, "metrics", None), str):  # eval folder / resynthesis: checked only when they start
        from speechkit.metrics.folder import METRIC_GROUPS

        unknown = [m for m in ns.metrics.split(",") if m.strip() and m.strip() not in METRIC_GROUPS]
        if unknown:
            return [f"speechkit-cli: --metrics {','.join(unknown)}: not among {', '.join(sorted(METRIC_GROUPS))}"]
    return []


def _help(argv: list[str]) -> str:  # a recipe's --help
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return f"rc={r.returncode}\n{r.stdout}{r.stderr}"


# Runs each script as __main__ with ``--help`` and then with each argument list of the docs, stopping each run as
# soon as argparse has parsed its arguments (nothing else of the script runs). One process for all the scripts, so
# torch is imported once. argv: JSON {script: [arglist, ...]}.
_PROBE = r"""
import argparse, contextlib, io, json, os, runpy, sys
class Parsed(Exception):
    pass
orig = argparse.ArgumentParser.parse_known_args
def parse_known_args(self, args=None, namespace=None):
    ns, extras = orig(self, args, namespace)
    if extras:
        self.error("unrecognized arguments: " + " ".join(extras))
    raise Parsed()
argparse.ArgumentParser.parse_known_args = parse_known_args
def run(script, args):
    sys.argv = [script, *args]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
        return "ran", out.getvalue() + err.getvalue()
    except Parsed:
        return "parsed", ""
    except SystemExit as e:
        return ("exit0" if e.code in (0, None) else "error"), out.getvalue() + err.getvalue()
    except BaseException as e:
        return "error", f"{type(e).__name__}: {e}"
found = {}
path = list(sys.path)
for script, arglists in json.loads(sys.argv[1]).items():
    sys.path[:] = [os.path.dirname(os.path.abspath(script)), *path]
    status, help_text = run(script, ["--help"])
    results = []
    if status == "exit0" and help_text.startswith("usage:"):  # an argparse script: its parser judges the arguments
        results = [run(script, args) for args in arglists]
    found[script] = {"help": help_text, "help_status": status, "results": results}
print("\n@@PROBE@@" + json.dumps(found))
"""

_PROBED: dict[str, dict] = {}


def probe_scripts(requests: dict[str, list[list[str]]]) -> None:
    """For each script: its ``--help``, and whether its argparse parser accepts each argument list."""
    todo = {s: a for s, a in sorted(requests.items()) if (ROOT / s).is_file()}
    r = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(todo)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if "@@PROBE@@" not in r.stdout:
        raise RuntimeError(f"probing the scripts failed: {(r.stdout + r.stderr)[-3000:]}")
    for script, found in json.loads(r.stdout.rsplit("@@PROBE@@", 1)[1]).items():
        results = found["results"]  # empty for a script without argparse: only its --help is known
        found["results"] = {tuple(a): r for a, r in zip(todo[script], results, strict=True)} if results else {}
        _PROBED[script] = found


def _has_option(text: str, opt: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text) is not None


def _options_used(args: list[str]) -> list[tuple[str, str | None]]:
    """``(--option, the word after it or None)`` for every option-like argument."""
    out = []
    for i, a in enumerate(args):
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", a):
            opt, eq, val = a.partition("=")
            nxt = args[i + 1] if i + 1 < len(args) else None
            out.append((opt, val if eq else (nxt if nxt is not None and not nxt.startswith("-") else None)))
    return out


def check_script(cmd: Command) -> list[str]:
    """The script exists and its ``--help`` works; an argparse script's own parser accepts the arguments as shown
    (it runs as ``__main__`` and stops right after parsing); for an inline fragment, or a script without argparse,
    every option is in its ``--help`` and a value of an option with choices (``--opt {a,b}``) is one of them."""
    script, args = cmd.args[0], cmd.args[1:]
    if not (ROOT / script).is_file():
        return [f"script-missing: {script} does not exist"]
    if script not in _PROBED or (not cmd.inline and _PROBED[script]["results"]
                                 and tuple(args) not in _PROBED[script]["results"]):
        probe_scripts({script: [] if cmd.inline else [args]})
    probed = _PROBED[script]
    if probed["help_status"] != "exit0":
        return [f"script-help: `python {script} --help` failed: {probed['help'][-500:]}"]
    result = probed["results"].get(tuple(args))
    if result and not cmd.inline:
        status, text = result
        if status == "parsed":
            return []
        if status == "ran":
            return [f"script-args: {script} ran without parsing its arguments with argparse"]
        return [f"script-args: {script}: {text.strip().splitlines()[-1] if text.strip() else status}"]
    # argparse's usage lists every option; the description and epilog (examples) may name options that are gone
    text = probed["help"]
    usage = re.search(r"(?ms)^usage:.*?(?=^\s*$)", text)
    text = usage.group(0) if usage else text
    errors = []
    for opt, val in _options_used(args):
        if not _has_option(text, opt):
            errors.append(f"script-option: {script} has no option {opt} (not in its --help usage)")
            continue
        m = re.search(rf"(?<![\w-]){re.escape(opt)}(?:,\s*--?[\w-]+)*[ =]\{{([^}}]+)\}}", text)
        if m and val is not None:
            choices = m.group(1).split(",")
            if not all(v in choices for v in val.split(",")):
                errors.append(f"script-choice: {script} {opt} {val}: not one of {{{m.group(1)}}}")
    return errors


# --stage names, and the Hydra overrides a recipe option passes to a `speechkit train TASK`
RECIPE_HYDRA_ARGS = {
    "recipes/default/run.sh": {"--dec-args": "unit_mel", "--phone-args": "hubert", "--voc-args": "vocos"},
    "recipes/own_data/run.sh": {"--dec-args": "unit_mel", "--voc-args": "vocos", "--ulm-args": "ulm",
                                "--km-args": "kmeans"},
    "recipes/twist/run.sh": {"--ulm-args": "ulm", "--textlm-args": "textlm"},
    "recipes/vdtts/run.sh": {"--train-args": "vdtts"},
    "recipes/vocoder/run.sh": {"--train-args": "vocoder"},
}


@functools.cache
def recipe_interface(script: str) -> tuple[set[str], list[str], str, str]:
    """(options the argument loop accepts or --help lists, stage names in order, --help text, source) of a recipe."""
    src = (ROOT / script).read_text()
    help_text = _help(["bash", script, "--help"])
    options = set(re.findall(r"(?m)^\s*(?:[-\w]+\|)*(--[\w-]+)(?:\|[-\w]+)*\)", src))
    options |= set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", help_text.split("options:", 1)[1])) \
        if "options:" in help_text else set()
    m = re.search(r"STAGES=\(([^)]*)\)", src)
    stages = m.group(1).split() if m else []
    return options, stages, help_text, src


def check_recipe(cmd: Command) -> list[str]:
    """The recipe exists; every option is one its argument loop accepts; ``--stage`` / ``--stop-stage`` name a
    stage (or a number); a ``--preset`` is one the script knows; ``--*-args`` overrides compose with the task
    they are passed to."""
    script = cmd.args[0]
    if not (ROOT / script).is_file():
        return [f"recipe-missing: {script} does not exist"]
    options, stages, _, src = recipe_interface(script)
    errors, index = [], {}
    for opt, val in _options_used(cmd.args[1:]):
        if opt not in options:
            errors.append(f"recipe-option: {script} has no option {opt}")
        elif opt in ("--stage", "--stop-stage") and val is not None and stages:
            if val.isdigit() and int(val) < len(stages):
                index[opt] = int(val)
            elif val in stages:
                index[opt] = stages.index(val)
            else:
                errors.append(f"recipe-stage: {script} has no stage {val!r} (stages: {' '.join(stages)})")
        elif opt == "--preset" and val is not None and not re.search(rf"(?<![\w-]){re.escape(val)}(?![\w-])", src):
            errors.append(f"recipe-option: {script} does not know --preset {val}")
        elif opt in RECIPE_HYDRA_ARGS.get(script, {}) and val is not None:
            msg = _compose_errors(RECIPE_HYDRA_ARGS[script][opt], val.split(), require_all=False)
            if msg:
                errors.append(f"recipe-hydra-args: {opt}: {msg}")
    if index.get("--stage", 0) > index.get("--stop-stage", len(stages)):
        errors.append(f"recipe-stage: --stage comes after --stop-stage in {script}'s order ({' '.join(stages)})")
    return errors


@functools.cache
def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {t for line in re.findall(r"(?m)^([\w.%/ -]+?)\s*:(?!=)", text) for t in line.split()}


def check_make(cmd: Command) -> list[str]:
    targets = [a for a in cmd.args if not a.startswith("-") and "=" not in a]
    return [f"make-target: the Makefile has no target {t!r}" for t in targets if t not in make_targets()]


CHECKS = {"speechkit": check_speechkit, "script": check_script, "recipe": check_recipe, "make": check_make}


def check_shipped_paths(cmd: Command) -> list[str]:
    """Arguments naming a shipped model (``checkpoints/...``, also as ``key=checkpoints/...``) exist."""
    errors = []
    for a in cmd.args:
        for part in re.findall(r"(?:^|[=\s])(checkpoints/[\w./-]*)", a):
            if not (ROOT / part.rstrip("/.")).exists():
                errors.append(f"path-missing: {part} is not in the repository")
    return errors


def check_command(cmd: Command) -> list[str]:
    """Failure messages ``page:line: rule: detail`` of one command (empty when it is fine)."""
    return [f"{cmd.where()}: {e}\n    {cmd.text}" for e in CHECKS[cmd.kind](cmd) + check_shipped_paths(cmd)]


def check_name_ref(page: str, line: int, name: str) -> list[str]:
    """An inline `speechkit.module.name` names a module, or a name in one, that exists."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return [f"{page}:{line}: name-ref: `{name}`: {'.'.join(parts[:i])} has no {attr}"]
            obj = getattr(obj, attr)
        return []
    return [f"{page}:{line}: name-ref: `{name}`: no such module"]


def name_refs(path: Path) -> list[tuple[str, int, str]]:
    """``(page, line, dotted name)`` of every inline `speechkit.x[.y...]` of a page."""
    page = page_name(path)
    return [(page, n, s) for n, s in inline_spans(path) if re.fullmatch(r"speechkit(\.[A-Za-z_]\w*)+", s)]


# ---------------------------------------------------------------------------------------- python blocks (driver)

def _sample(sample_rate: int):
    from speechkit.audio import io

    return io.load(ROOT / SAMPLE, sample_rate=sample_rate)[0]


def _given_file(name: str, make) -> None:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)


def _save(wav, sr):
    from speechkit.audio import io

    return lambda path: io.save(path, wav, sr)


def _face_video(path: Path) -> None:
    import numpy as np

    from speechkit.audio import video
    from speechkit.synth.talking_face import render_face
    frames = np.stack([render_face("pale", abs(np.sin(i / 4)), 1.0) for i in range(30)])
    video.write_video(path, frames, 25, audio=np.zeros(19200, np.float32), sample_rate=16000)


def _units(ns: dict) -> None:
    from speechkit.units import SpeechEncoder

    out = SpeechEncoder.from_pretrained(ROOT / "checkpoints/default/encoder")(_sample(16000), sample_rate=16000)
    ns["units"], ns["durations"] = out["units"], out["durations"]


# What a page may say the reader already has: name -> (what it is, how the test makes it in the working folder)
GIVEN = {
    "wav": ("2.4 s of speech at 48 kHz (a 1-D tensor)", lambda ns: ns.update(wav=_sample(48000))),
    "chunks": ("that speech at 48 kHz in 100 ms pieces", lambda ns: ns.update(chunks=list(_sample(48000).split(4800)))),
    "play": ("a no-op audio sink", lambda ns: ns.update(play=lambda y: None)),
    "units": ("deduplicated units of the bundle's encoder", _units),
    "durations": ("their durations", _units),
    "speech_48k.wav": ("a 48 kHz mono file", lambda ns: _given_file("speech_48k.wav", _save(_sample(48000), 48000))),
    "dialogue.wav": ("a 16 kHz stereo file", lambda ns: _given_file(
        "dialogue.wav", _save(__import__("torch").stack([_sample(16000), 0.5 * _sample(16000)]), 16000))),
    "long.wav": ("7 s at 16 kHz", lambda ns: _given_file("long.wav", _save(_sample(16000).repeat(3), 16000))),
    "my_recordings/alice/0001.wav": ("one recording", lambda ns: _given_file(
        "my_recordings/alice/0001.wav", _save(_sample(16000), 16000))),
    "face.mp4": ("a 1.2 s talking-face video (25 fps, with an audio track)",
                 lambda ns: _given_file("face.mp4", _face_video)),
}


def speechkit_names_errors(code: str, filename: str, first_line: int) -> list[str]:
    """Compile the block; every ``speechkit`` module and name it imports exists; calls of those names (and their
    attributes, e.g. ``X.from_pretrained``) bind to the callables' signatures."""
    source = "\n" * (first_line - 1) + code
    try:
        tree = ast.parse(source, filename)
        compile(tree, filename, "exec")
    except SyntaxError as e:
        return [f"{filename}:{e.lineno}: python-compile: {e.msg}"]
    bound, errors = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "speechkit":
            try:
                mod = importlib.import_module(node.module)
            except ImportError as e:
                errors.append(f"{filename}:{node.lineno}: python-import: {e}")
                continue
            for alias in node.names:
                if hasattr(mod, alias.name):
                    bound[alias.asname or alias.name] = getattr(mod, alias.name)
                else:
                    try:
                        bound[alias.asname or alias.name] = importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        errors.append(f"{filename}:{node.lineno}: python-import: {node.module} has no name "
                                      f"{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "speechkit":
                    continue
                try:
                    mod = importlib.import_module(alias.name)
                    bound[alias.asname or "speechkit"] = mod if alias.asname else importlib.import_module("speechkit")
                except ImportError as e:
                    errors.append(f"{filename}:{node.lineno}: python-import: {e}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain, f = [], node.func
        while isinstance(f, ast.Attribute):
            chain.insert(0, f.attr)
            f = f.value
        if not isinstance(f, ast.Name) or f.id not in bound:
            continue
        obj, path = bound[f.id], f.id
        for attr in chain:
            path += f".{attr}"
            if not hasattr(obj, attr):
                if inspect.ismodule(obj):
                    try:
                        obj = importlib.import_module(f"{obj.__name__}.{attr}")
                        continue
                    except ImportError:
                        pass
                errors.append(f"{filename}:{node.lineno}: python-import: {path}: no attribute {attr}")
                obj = None
                break
            obj = getattr(obj, attr)
        if obj is None or not callable(obj) or any(isinstance(a, ast.Starred) for a in node.args) \
                or any(k.arg is None for k in node.keywords):
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        try:
            sig.bind(*[None] * len(node.args), **{k.arg: None for k in node.keywords})
        except TypeError as e:
            errors.append(f"{filename}:{node.lineno}: python-signature: {path}{sig}: {e}")
    return errors


def drive(spec_path: str, result_path: str) -> None:
    """Runs in a subprocess: every page's blocks in order, each page in its own working folder and namespace."""
    import traceback

    spec = json.loads(Path(spec_path).read_text())
    results = []
    for page in spec["pages"]:
        work = Path(spec["work"]) / Path(page["page"]).stem
        work.mkdir(parents=True, exist_ok=True)
        (work / "checkpoints").symlink_to(ROOT / "checkpoints")
        os.chdir(work)
        ns: dict = {"__name__": "__main__"}
        made: set[str] = set()
        for block in page["blocks"]:
            t0 = time.perf_counter()
            where = f"{page['page']}:{block['line']}"
            errors = speechkit_names_errors(block["code"], page["page"], block["line"])
            if block["mode"] == "run" and not errors:
                try:
                    for path, target in block["links"].items():
                        Path(path).parent.mkdir(parents=True, exist_ok=True)
                        if not Path(path).exists():
                            Path(path).symlink_to(ROOT / target)
                    for name in block["given"]:
                        if name not in GIVEN:
                            raise KeyError(f"no given {name!r}; known: {', '.join(GIVEN)}")
                        if name not in made:
                            GIVEN[name][1](ns)
                            made.add(name)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"{where}: marker: setting up the givens / links failed: {type(e).__name__}: {e}")
                else:
                    code = compile("\n" * (block["line"] - 1) + block["code"], page["page"], "exec")
                    try:
                        exec(code, ns)  # noqa: S102 - the docs' own snippets
                    except BaseException as e:  # noqa: BLE001
                        tb = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == page["page"]]
                        line = tb[-1].lineno if tb else block["line"]
                        errors.append(f"{page['page']}:{line}: python-run: {type(e).__name__}: {e}")
            results.append({"where": where, "mode": block["mode"], "errors": errors,
                            "seconds": round(time.perf_counter() - t0, 2)})
        os.chdir(spec["work"])
    Path(result_path).write_text(json.dumps(results))


if __name__ == "__main__":
    drive(sys.argv[1], sys.argv[2])
