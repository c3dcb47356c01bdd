#!/usr/bin/env python
"""Build the synthetic spoken StoryCloze, or train-story speech; the same as `speechkit prepare storycloze` /
`speechkit prepare story-speech` (see their --help).

    .venv/bin/python data_prep/make_storycloze.py data/storycloze --pairs 200 --voice us2
    .venv/bin/python data_prep/make_storycloze.py story-speech data/story_speech --stories 1000
"""

import sys

from speechkit.cli.main import main

if __name__ == "__main__":
    args = sys.argv[1:]
    command = ["story-speech", *args[1:]] if args[:1] == ["story-speech"] else ["storycloze", *args]
    sys.exit(main(["prepare", *command]))
