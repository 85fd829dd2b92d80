"""`lastmile demo`: the README's first command runs a whole simulated station, shows it live and reports on
its day."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest


@pytest.mark.slow
def test_demo_runs_a_station_and_reports_every_mode() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:  # the asked-for port is taken: any free one then
        taken = other.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "controller", "demo", "--minutes", "1", "--speedup", "40",
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
    # Every package is accounted for once: delivered, to a van, or not finished (issue 20: the one still
    # en route when time ran out was missing), and a line says why the day ended.
    unfinished = figure("not finished yet")
    assert figure("of which delivered") + figure("handed to a van") + unfinished == 30
    ended = re.search(r"^the day ended: (.*)$", out, re.MULTILINE)
    assert ended, out
    if unfinished:
        assert ended.group(1).startswith("time ran out (1 wall-clock min = 40 simulated min, --minutes)")
        assert f"{unfinished} package" in ended.group(1)
    else:
        done = ended.group(1) == "every order was delivered or handed to a van"
        assert done or ended.group(1).startswith("time ran out"), ended.group(1)
    assert figure("by drone") > 0
    assert figure("by robot") > 0
    assert figure("van fallbacks") > 0
    # The live dashboard (its last screen, as output that is not a terminal gets it), over the demo's API.
    dashboard = out[: out.index("End of the simulated day")]
    assert "vehicles online" in dashboard and "recent events (wall clock)" in dashboard, dashboard
    assert re.search(r"online  wall \d\d:\d\d:\d\d UTC", dashboard), dashboard  # the clock says which
    assert re.search(r"^d1 +drone +ok ", dashboard, re.MULTILINE), dashboard
    assert re.search(r"\d\d:\d\d:\d\d UTC  package demo-5050-\d+ (delivered by|van:)", dashboard), dashboard
    assert "left AUTO" not in out and "resend=" not in out  # no warning on a normal delivery, no internals
    assert "ETA wall" not in dashboard  # the demo's ETAs are on its simulated clock, and say so ("ETA sim")


@pytest.mark.slow
def test_ctrl_c_ends_the_demo_early_with_its_report() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "demo", "--minutes", "3", "--no-live", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"COLUMNS": "120", "PATH": ""},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the demo is up once it says where its console is
        match = re.search(r"web console: (http://\S+)/  \(operator token: ([\w.-]+)\)", line)
        assert match, line
        url, token = match.groups()
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 60
        while not httpx.get(url + "/v1/fleet", headers=headers).json()["queue"]["van"]:
            assert time.monotonic() < deadline, "no order reached the vans"
            time.sleep(0.2)  # orders arrive every few seconds: look again soon
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "End of the simulated day" in out, out
    assert re.search(r"^the day ended: stopped early \(Ctrl-C\)", out, re.MULTILINE), out
    received = re.search(r"received\s*│\s*(\d+)", out)
    van = re.search(r"van fallbacks\s*│\s*(\d+)", out)
    assert received and van and 0 < int(van.group(1)) <= int(received.group(1)) < 40, out
