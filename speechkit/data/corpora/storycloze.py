"""Moved to :mod:`speechkit.synth.storycloze`: the corpus generators left the library core (speechkit.synth).

This alias keeps the old import path (named in DESIGN.md's layout) working: the module object is the moved one.
"""

import sys
import warnings

from speechkit.synth import storycloze as _moved

warnings.warn("speechkit.data.corpora.storycloze moved to speechkit.synth.storycloze", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
