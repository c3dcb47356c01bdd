"""VDTTS: video- and text-conditioned speech synthesis (Hassid et al. 2022), for dubbing.

The public names load lazily (importing the package costs nothing)::

    import speechkit.vdtts
    speechkit.vdtts.dub("face.mp4", "Bring the red box.", "dubbed.mp4", speaker="us2")
    tts = speechkit.vdtts.VDTTS.from_pretrained("checkpoints/vdtts")
    wav = tts.synthesize_video("face.mp4", "Bring the red box.")    # (samples,) at tts.output_sample_rate

Files: ``config.py`` (VDTTSConfig), ``model.py`` (blocks), ``factory.py`` (builders), ``text.py`` (phonemes),
``vocoding.py`` (Griffin-Lim / mel HiFi-GAN), ``inference.py`` (the API).
"""

from __future__ import annotations

import importlib

__all__ = ["VDTTS", "VDTTSConfig", "dub", "phonemize"]

_LAZY = {
    "VDTTS": "speechkit.vdtts.inference",
    "dub": "speechkit.vdtts.inference",
    "VDTTSConfig": "speechkit.vdtts.config",
    "phonemize": "speechkit.vdtts.text",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
