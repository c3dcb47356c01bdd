"""`from speechkit import Resynthesizer` (DESIGN's public API) works, and importing speechkit stays cheap."""

import subprocess
import sys


def test_top_level_names_load_lazily():
    code = ("import sys, speechkit; assert 'torch' not in sys.modules, 'import speechkit must not import torch'; "
            "from speechkit import Resynthesizer, SpeechContinuation; "
            "from speechkit.pipeline import Resynthesizer as R; assert Resynthesizer is R")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_unknown_attribute_is_an_attribute_error():
    import speechkit

    try:
        speechkit.NotAThing  # noqa: B018
    except AttributeError as e:
        assert "NotAThing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_exports_are_visible_to_type_checkers():
    """``py.typed`` ships (setup.cfg package data), and the names loaded lazily at run time are the ones imported
    under TYPE_CHECKING, which is what IDEs and type checkers read."""
    import ast
    import configparser
    from pathlib import Path

    import speechkit

    pkg = Path(speechkit.__file__).parent
    assert (pkg / "py.typed").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(pkg.parent / "setup.cfg")
    assert "py.typed" in cfg["options.package_data"]["speechkit"]
    tree = ast.parse((pkg / "__init__.py").read_text())
    typed = {a.name for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", "") ==
             "TYPE_CHECKING" for stmt in node.body if isinstance(stmt, ast.ImportFrom) for a in stmt.names}
    assert typed == set(speechkit._LAZY) == set(speechkit.__all__) - {"__version__"}
