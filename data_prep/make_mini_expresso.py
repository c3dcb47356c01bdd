#!/usr/bin/env python
"""Build the synthetic mini-Expresso; the same as `speechkit prepare mini-expresso` (see its --help).

    .venv/bin/python data_prep/make_mini_expresso.py data/mini_expresso --minutes 60 --jobs 2
"""

import sys

from speechkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "mini-expresso", *sys.argv[1:]]))
