"""Layering the code relies on: inference never depends on training code, nor on the synthetic-corpus generators."""

from __future__ import annotations

import ast
from pathlib import Path

import speechkit

PKG = Path(speechkit.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module the package file ``path`` imports (see :func:`_imports_of`)."""
    package = ".".join(("speechkit", *path.relative_to(PKG).parent.parts))
    return _imports_of(path.read_text(), package)


def _imports_of(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, at module level or inside functions:
    ``import a.b``, ``from a.b import c`` (``a.b`` and ``a.b.c``: ``from speechkit import synth`` is
    ``speechkit.synth``), relative imports resolved, and ``importlib.import_module("a.b")`` / ``__import__("a.b")``
    with a literal name."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.add(node.args[0].value)
    return out


def _offenders(forbidden: str, allowed: tuple[str, ...]) -> list[str]:
    """``file: modules`` for each module of the package outside ``allowed`` folders that imports ``forbidden`` or
    one of its submodules."""
    out = []
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG).as_posix()
        if rel.startswith(allowed):
            continue
        bad = sorted(m for m in _imports(f) if m == forbidden or m.startswith(forbidden + "."))
        if bad:
            out.append(f"{rel}: {', '.join(bad)}")
    return out


def test_inference_modules_do_not_import_training_code():
    """Loading a model, resynthesising or scoring must not pull in trainers (the released-model folder format and
    CheckpointError live in speechkit.utils.checkpoint)."""
    offenders = _offenders("speechkit.train", ("train/", "cli/"))
    assert not offenders, "inference imports training code:\n" + "\n".join(offenders)


# Old import paths of moved generators, kept as aliases of the moved modules (DESIGN.md's layout named them):
# importing one is asking for the generator, and nothing in the package imports them.
SYNTH_ALIASES = ("data/corpora/synthetic.py", "data/corpora/storycloze.py")


def test_library_does_not_import_the_corpus_generators():
    """speechkit.synth makes offline synthetic corpora (espeak-ng/MBROLA speech, seeded sentences and stories,
    talking faces) for tests, demos and the default bundle; using the models never needs it. Only the command line
    (``speechkit prepare ...``) and trainers may import it; text-to-phoneme conversion that inference needs lives
    in speechkit.data.phonemize, and benchmarks take their text-only baselines as functions."""
    offenders = _offenders("speechkit.synth", ("synth/", "cli/", "train/", *SYNTH_ALIASES))
    assert not offenders, "library code imports the corpus generators (speechkit.synth):\n" + "\n".join(offenders)


def test_import_walk_sees_every_import_form():
    """The walk above must catch the forms that would hide an import: inside a function, ``from speechkit import
    synth``, relative, and importlib."""
    source = ("def a():\n    from speechkit import synth\n\n\ndef b():\n    from ..synth import tts\n\n\n"
              "def c():\n    import importlib\n    importlib.import_module('speechkit.synth.sentences')\n")
    found = _imports_of(source, "speechkit.metrics")
    assert {"speechkit.synth", "speechkit.synth.tts", "speechkit.synth.sentences"} <= found


def test_nothing_in_the_package_imports_the_old_generator_paths():
    aliases = {"speechkit." + a.removesuffix(".py").replace("/", ".") for a in SYNTH_ALIASES}
    offenders = [f"{f.relative_to(PKG).as_posix()}: {', '.join(sorted(bad))}" for f in sorted(PKG.rglob("*.py"))
                 if (bad := aliases & _imports(f))]
    assert not offenders, "use speechkit.synth.*, not the old aliases:\n" + "\n".join(offenders)


def _module_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (:func:`_imports`: anywhere in the file); a package's edges to
    and from its own submodules (``__init__`` re-exports) are left out."""
    mods = {".".join(("speechkit", *f.relative_to(PKG).with_suffix("").parts)).removesuffix(".__init__"): f
            for f in PKG.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, f in mods.items():
        targets = {resolve(m) for m in _imports(f) if m.startswith("speechkit")}
        graph[mod] = {t for t in targets if t and t != mod and not t.startswith(mod + ".")
                      and not mod.startswith(t + ".")}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """The strongly connected components of more than one module (Tarjan), each as ``a <-> b <-> ...``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(" <-> ".join(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a <-> b <-> c"]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    """No modules import each other, directly or through others, lazy imports inside functions included (a circle
    there is still a layering knot, one refactor away from an import-time failure)."""
    circles = _circles(_module_graph())
    assert not circles, "import circles:\n" + "\n".join(circles)
