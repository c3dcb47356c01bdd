"""Moved to :mod:`speechkit.synth.synthetic`: the corpus generators left the library core (speechkit.synth).

This alias keeps the old import path (named in DESIGN.md's layout) working: the module object is the moved one.
"""

import sys
import warnings

from speechkit.synth import synthetic as _moved

warnings.warn("speechkit.data.corpora.synthetic moved to speechkit.synth.synthetic", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
