"""Shared test configuration. Area-specific fixtures live in each tests/<area>/conftest.py.

Tests marked `ardupilot` fly whichever copter target `sitl.ardupilot.copter_target()` names: the real
ArduPilot SITL when `ARDUPILOT_SITL` is set, else the built-in simulator. The run's summary says which one
flew them and how they went, so a run against the built-in simulator is never mistaken for one against
ArduPilot (the header of a run that collects tests/sitl says it too).
"""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line: which copter target the `ardupilot` tests flew, and their outcome."""
    counted = [r for key in ("passed", "failed", "skipped") for r in terminalreporter.stats.get(key, [])]
    flown = [r for r in counted if "ardupilot" in r.keywords and r.when in ("call", "setup")]
    if not flown:
        return
    from sitl.ardupilot import copter_target

    tally: dict[str, int] = {}
    for r in flown:
        if r.when == "call" or r.outcome != "passed":
            tally[r.outcome] = tally.get(r.outcome, 0) + 1
    shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items()))
    terminalreporter.write_line(f"ardupilot-marked tests ({shown}) flew the {copter_target().describe()}")
