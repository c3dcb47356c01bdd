#!/usr/bin/env python
"""Where the HuBERT of recipes/own_data's ``--encoder`` is, as shell assignments (``hubert=...``,
``layer_default=...``, ``kmeans=...``) for the recipe to ``source``.

    .venv/bin/python data_prep/own_data_encoder.py default
    .venv/bin/python data_prep/own_data_encoder.py hubert-base-ls960      # a card: fetched into the cache
"""

from __future__ import annotations

import shlex
import sys


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    from speechkit.data.corpora.own import resolve_encoder
    from speechkit.errors import SpeechkitError

    try:
        found = resolve_encoder(sys.argv[1])
    except SpeechkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"hubert={shlex.quote(found['hubert'])}")
    print(f"layer_default={'' if found['layer'] is None else found['layer']}")
    print(f"kmeans={shlex.quote(found['kmeans'] or '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
