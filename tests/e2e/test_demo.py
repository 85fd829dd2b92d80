"""`lastmile demo`: the README's first command runs a whole simulated station, shows it live and reports on
its day."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_a_station_and_reports_every_mode() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:  # the asked-for port is taken: any free one then
        taken = other.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "controller", "demo", "--minutes", "2", "--speedup", "20",
             "--orders", "30", "--port", str(taken)],
            capture_output=True, text=True, timeout=240, env={"COLUMNS": "120", "PATH": ""},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout

    def figure(label: str) -> int:
        match = re.search(rf"{label}\s*│\s*(\d+)", out)
        assert match, f"no '{label}' row in:\n{out}"
        return int(match.group(1))

    console = re.search(r"web console: http://127\.0\.0\.1:(\d+)/", out)
    assert console and int(console.group(1)) != taken
    assert figure("received") == 30
    assert figure("by drone") > 0
    assert figure("by robot") > 0
    assert figure("van fallbacks") > 0
    # The live dashboard (its last screen, as output that is not a terminal gets it), over the demo's API.
    dashboard = out[: out.index("End of the simulated day")]
    assert "vehicles online" in dashboard and "recent events" in dashboard, dashboard
    assert re.search(r"^d1 +drone +ok ", dashboard, re.MULTILINE), dashboard
    assert re.search(r"package demo-5050-\d+ (delivered by|van:)", dashboard), dashboard
