"""The README's reliability table from the reports the suite writes.

    SPEECHKIT_RELIABILITY_REPORT=eval/reliability/test.json .venv/bin/python -m pytest -q tests/reliability
    make fuzz                                   # writes eval/reliability/fuzz.json
    .venv/bin/python eval/reliability/table.py  # prints the markdown table
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHAT = {
    "corrupted files": "7 corruptions x seeds of every file of 14 formats",
    "parsers (hypothesis)": "generated text and bytes for 15 parsers, config dicts, Hydra overrides",
    "malicious files": "code-running pickles, escaping archives and card names, lying headers",
    "kill -9 and resume": "SIGKILL at random points of 6 jobs, then resume",
    "resource faults": "ENOSPC, EACCES, two writers, missing or vanishing binaries",
    "long and short inputs": "0.05 s and 1 h files through encode, resynth, eval",
    "CLI bad input": "8 kinds of bad audio x 4 commands, corpus jobs, bad text and model files",
}


def areas(path: Path) -> dict[str, list[int]]:
    """area -> [cases, tried, ok, refused or survived, failures]."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for r in json.loads(path.read_text())["rows"]:
        a = out[r["area"]]
        for i, key in enumerate(("tried", "loaded_or_ok", "refused_or_survived", "failures"), start=1):
            a[i] += r[key]
        a[0] += 1
    return out


def main() -> int:
    test, fuzz = areas(HERE / "test.json"), areas(HERE / "fuzz.json")
    print("| Area | What is injected | Cases | Faults tried (`make test` / `make fuzz`) | Rule held (fuzz) "
          "| Failures |")
    print("|---|---|---|---|---|---|")
    for area in WHAT:
        t, f = test.get(area, [0] * 5), fuzz.get(area, [0] * 5)
        held = f"{f[2] + f[3]} ({f[2]} loaded, {f[3]} refused)" if f[2] else f"{f[3]}"
        print(f"| {area} | {WHAT[area]} | {max(t[0], f[0])} | {t[1]} / {f[1]} | {held} | {t[4] + f[4]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
