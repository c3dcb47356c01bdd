"""Offline synthetic corpora for tests, demos and the default bundle — not needed to use the models.

Everything here makes data that stands in for real recordings where none can be downloaded: speech synthesised
with Debian's espeak-ng and MBROLA voices, sentences and stories from seeded grammars, cartoon talking faces.

- :mod:`speechkit.synth.tts` — offline speech synthesis (espeak-ng, MBROLA) with prosody controls.
- :mod:`speechkit.synth.sentences` — a seeded generator of everyday English sentences.
- :mod:`speechkit.synth.synthetic` — the synthetic mini-Expresso (the released Expresso layout, styles, splits).
- :mod:`speechkit.synth.storycloze` — seeded five-sentence stories and a synthetic spoken StoryCloze (sSC / tSC).
- :mod:`speechkit.synth.text` — the text corpus (stories + sentences) of the small text LM.
- :mod:`speechkit.synth.talking_face` — rendered talking-face videos with speech, for VDTTS.

Loaders of real data (Expresso, a user's own recordings) live in :mod:`speechkit.data.corpora`; text-to-phoneme
conversion that models need at inference time lives in :mod:`speechkit.data.phonemize`. Library code outside
``speechkit.synth``, ``speechkit.cli`` and ``speechkit.train`` never imports this package
(``tests/unit/test_architecture.py`` checks it).
"""
