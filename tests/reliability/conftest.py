"""Prints the reliability suite's report (cases tried, loaded, refused with a good error, failures) at the end of a
run, and writes it as JSON where ``SPEECHKIT_RELIABILITY_REPORT`` names a file (``make fuzz`` does)."""

from __future__ import annotations

import json
import os


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from tests.reliability.faults import REPORT

    if not REPORT:
        return
    tr = terminalreporter
    tr.section("reliability report")
    rows = []
    for area, cases in REPORT.items():
        for case, t in sorted(cases.items()):
            rows.append({"area": area, "case": case, "tried": t.cases, "loaded_or_ok": t.loaded,
                         "refused_or_survived": t.refused, "failures": len(t.failures)})
            tr.write_line(f"{area:<22} {case:<42} tried {t.cases:>5}  ok {t.loaded:>5}  refused/survived "
                          f"{t.refused:>5}  failures {len(t.failures)}")
    path = os.environ.get("SPEECHKIT_RELIABILITY_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"scale": float(os.environ.get("SPEECHKIT_FUZZ_SCALE", "1")), "rows": rows}, f, indent=1)
