"""speechkit: textless speech generation — encode speech to units, model them, decode them back to speech.

Importing the package is cheap: it imports no torch and touches no file. Subpackages:

- :mod:`speechkit.audio` — audio I/O (the only place audio files are read or written) and DSP helpers.
- :mod:`speechkit.data` — manifests (fairseq tsv, units jsonl) and corpora (the synthetic mini-Expresso).
- :mod:`speechkit.metrics` — ASR word error rate.
- :mod:`speechkit.cli` — the ``speechkit`` command.
"""

__version__ = "0.1.0"
