"""speechkit: textless speech generation — encode speech to units, model them, decode them back to speech.

Importing the package is cheap: it imports no torch and touches no file; the pipeline classes load on first use
(``from speechkit import Resynthesizer``). Subpackages:

- :mod:`speechkit.audio` — audio I/O (the only place audio files are read or written) and DSP helpers.
- :mod:`speechkit.data` — manifests (fairseq tsv, units jsonl), corpus loaders (Expresso, your own recordings),
  espeak-ng phonemization.
- :mod:`speechkit.synth` — offline synthetic corpora (espeak-ng/MBROLA) for tests, demos and the default bundle;
  not needed to use the models.
- :mod:`speechkit.units` — HuBERT features, k-means units, the speech encoder, corpus encoding.
- :mod:`speechkit.ulm` — unit language models (TWIST). :mod:`speechkit.vocoders` — unit HiFi-GAN vocoders.
- :mod:`speechkit.metrics` — ASR, F0, speaker, style, MOS, bitrate metrics and reports.
- :mod:`speechkit.pipeline` — ``Resynthesizer`` (offline and streaming), ``SpeechContinuation``.
- :mod:`speechkit.hub` — model cards.
- :mod:`speechkit.cli` — the ``speechkit`` command.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Resynthesizer", "SpeechContinuation", "StreamConfig", "__version__"]

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load on first use (no torch import)
    from speechkit.pipeline import Resynthesizer, SpeechContinuation, StreamConfig

_LAZY = {"Resynthesizer": "speechkit.pipeline", "SpeechContinuation": "speechkit.pipeline",
         "StreamConfig": "speechkit.pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'speechkit' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
