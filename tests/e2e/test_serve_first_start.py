"""`lastmile serve` on the example station out of the box: tokens made on the first start, kept for the next.

The example station file has no `[api.tokens]`. Its first `serve` makes an operator and a dispatcher token,
prints them once and keeps their hashes beside the station file; a restart prints nothing and the same
tokens work. Where that file cannot be written, `serve` refuses and names the command that makes a token.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from controller.cli import app
from controller.examples import TOLLESON
from tests.e2e.serving import free_port


def start(cwd: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """`lastmile serve` of the station copy in `cwd`; returns once it listens, with what it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "controller", "serve", "--station", "station.toml", "--port", str(port),
           "--store", f"sqlite:///{cwd / 'station.sqlite3'}"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + 30
    while not printed or " on port " not in printed[-1]:
        try:
            printed.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            proc.kill()
            raise TimeoutError("serve did not start:\n" + "".join(printed)) from None
    return proc, printed


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    assert proc.wait(30) == 0


@pytest.mark.slow
def test_first_start_makes_tokens_that_work_after_a_restart(tmp_path: Path) -> None:
    for name in ("station.toml", "zones.geojson"):
        shutil.copy(TOLLESON / name, tmp_path / name)
    before = (tmp_path / "station.toml").read_text()
    port = free_port()
    proc, printed = start(tmp_path, port)
    try:
        text = "".join(printed)
        tokens = dict(re.findall(r"^  (operator|dispatcher) +(\S+)$", text, re.M))
        assert set(tokens) == {"operator", "dispatcher"}, text
        assert "station.tokens.toml" in text and "LASTMILE_TOKEN" in text and "--token" in text
        assert "--simulate" in text, "a station whose vehicles have no link says how to simulate them"
        url = f"http://127.0.0.1:{port}"
        op = httpx.get(f"{url}/v1/fleet", headers={"Authorization": f"Bearer {tokens['operator']}"})
        assert op.status_code == 200 and op.json()["station"] == "Tolleson AZ (example)"
        dispatcher = {"Authorization": f"Bearer {tokens['dispatcher']}"}
        assert httpx.get(f"{url}/v1/fleet", headers=dispatcher).status_code == 403
        package = {"key": "first-1", "weight": 1, "dest_lat": 33.445, "dest_lon": -112.25}
        assert httpx.post(f"{url}/v1/packages", json=package, headers=dispatcher).status_code == 201
    finally:
        stop(proc)
    made = tmp_path / "station.tokens.toml"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert tokens["operator"] not in made.read_text(), "only hashes are kept"
    assert (tmp_path / "station.toml").read_text() == before, "the station file is the operator's"

    proc, printed = start(tmp_path, port)
    try:
        assert "no API tokens yet" not in "".join(printed), "tokens are printed on the first start only"
        answer = httpx.get(f"{url}/v1/fleet", headers={"Authorization": f"Bearer {tokens['operator']}"})
        assert answer.status_code == 200
    finally:
        stop(proc)

    station = str(tmp_path / "station.toml")
    listed = CliRunner().invoke(app, ["token", "list", "--station", station])
    assert listed.exit_code == 0
    names = {role: token.partition(".")[0] for role, token in tokens.items()}
    assert all(name in listed.stdout for name in names.values()), listed.stdout
    revoked = CliRunner().invoke(app, ["token", "revoke", names["dispatcher"], "--station", station])
    assert revoked.exit_code == 0, revoked.output
    assert names["dispatcher"] not in made.read_text() and names["operator"] in made.read_text()
    assert (tmp_path / "station.toml").read_text() == before


def test_no_token_and_no_writable_tokens_file_is_refused_naming_the_command(tmp_path: Path) -> None:
    shutil.copy(TOLLESON / "station.toml", tmp_path / "station.toml")
    shutil.copy(TOLLESON / "zones.geojson", tmp_path / "zones.geojson")
    station = tmp_path / "station.toml"
    result = CliRunner().invoke(
        app, ["serve", "--station", str(station), "--tokens-file", str(tmp_path / "missing" / "t.toml")]
    )
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert f"lastmile token create --role operator --station {station}" in said, result.output
    assert "has no API tokens" in said
    assert not (tmp_path / "missing").exists() and not (tmp_path / "station.tokens.toml").exists()


def test_speedup_without_simulate_is_refused() -> None:
    result = CliRunner().invoke(
        app, ["serve", "--station", str(TOLLESON / "station.toml"), "--speedup", "20"]
    )
    assert result.exit_code == 2
    assert "--simulate" in result.output
