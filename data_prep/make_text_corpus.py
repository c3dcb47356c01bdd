#!/usr/bin/env python
"""Build the project's text corpus; the same as `speechkit prepare text-corpus` (see its --help).

    .venv/bin/python data_prep/make_text_corpus.py data/text --stories 20000 --sentences 20000
"""

import sys

from speechkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "text-corpus", *sys.argv[1:]]))
