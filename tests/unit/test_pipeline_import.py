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
