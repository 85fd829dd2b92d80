"""One writer per store, without vehicles: a second `lastmile serve` on a SQLite store refuses to start and
names the process that holds it; on PostgreSQL it is a standby that refuses writes; a leader that finds its
lease taken (the epoch moved on under it) exits with code 3 (fenced)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from controller.service.leadership import FENCED_EXIT_CODE
from tests.e2e.serving import TOKEN, free_port
from tests.faults.serving import HEADERS, health, log_of, poll, serve, stop, write_station


def test_a_second_serve_on_a_sqlite_store_refuses_and_names_the_holder(tmp_path: Path) -> None:
    station = write_station(tmp_path, f"sqlite:///{tmp_path / 'station.sqlite3'}")
    first = serve(station, free_port(), "first")
    try:
        command = ["serve", "--station", str(station), "--port", str(free_port())]
        second = subprocess.run(
            [sys.executable, "-m", "controller", *command],
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "400"},
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        said = second.stderr
        assert f"in use by process {first.pid}" in said, said
        assert "station.sqlite3.lock" in said, said
        assert first.poll() is None  # the first goes on
    finally:
        stop(first)


@pytest.mark.slow  # 5 s, two serve processes
@pytest.mark.postgres
def test_a_standby_refuses_writes_naming_the_leader_and_a_fenced_leader_exits(
    tmp_path: Path, postgres_url: str
) -> None:
    station = write_station(tmp_path, postgres_url)
    leader_port, standby_port = free_port(), free_port()
    leader = serve(station, leader_port, "leader")
    standby = None
    try:
        assert poll(lambda: health(leader_port)["role"] == "leader", 10)
        standby = serve(station, standby_port, "standby")
        seen = poll(lambda: (h := health(standby_port))["role"] == "standby" and h, 10)
        assert seen["epoch"] == 1 and f"pid {leader.pid}" in seen["leader"], seen
        assert seen["status"] == "ok" and seen["store"] == "ok" and seen["vehicles_linked"] == 0, seen
        assert health(leader_port)["epoch"] == 1
        status = subprocess.run(
            [sys.executable, "-m", "controller", "status", "--url", f"http://127.0.0.1:{standby_port}"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "COLUMNS": "400", "LASTMILE_TOKEN": TOKEN},
        )  # fmt: skip
        assert status.returncode == 0 and "role: standby, epoch 1; the leader is" in status.stdout, status
        body = {"key": "k1", "weight": 1.0, "dest_lat": 33.45, "dest_lon": -112.25}
        with httpx.Client(base_url=f"http://127.0.0.1:{standby_port}", headers=HEADERS, timeout=10) as client:
            refused = client.post("/v1/packages", json=body)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert error["code"] == "standby" and f"pid {leader.pid}" in error["reason"], error
            assert client.post("/v1/fleet/ground", json={"reason": "test"}).status_code == 503
            with httpx.Client(base_url=f"http://127.0.0.1:{leader_port}", headers=HEADERS) as lead:
                made = lead.post("/v1/packages", json=body)
                assert made.status_code == 201, made.text
            package = made.json()
            read = client.get(f"/v1/packages/{package['id']}")  # the standby reads the shared store
            assert read.status_code == 200 and read.json()["key"] == "k1"
        # Another controller takes the lease over while this leader still runs (as after a pause of the
        # leader in which its lock session dropped): its next look at the lease ends it, fenced.
        admin = create_engine(postgres_url)
        with admin.begin() as conn:
            conn.execute(text("UPDATE lease SET epoch = epoch + 1, holder = 'a usurper'"))
        admin.dispose()
        assert leader.wait(15) == FENCED_EXIT_CODE
        assert "led at epoch 1, but the lease is at epoch 2, held by a usurper" in " ".join(
            log_of(station, "leader").split()
        )
        # The fenced leader gave the lock up as it went: the standby takes over (nobody holds the lock).
        took = poll(
            lambda: (h := health(standby_port))["role"] == "leader" and h, 10, what="the standby leads"
        )
        assert took["epoch"] == 3, took
    finally:
        stop(leader)
        if standby is not None:
            stop(standby)


@pytest.mark.postgres
def test_a_leader_stopped_with_sigterm_hands_over_at_once(tmp_path: Path, postgres_url: str) -> None:
    """A planned stop (systemd's SIGTERM) gives the lock up as the process ends: the standby leads at its next
    poll, and both processes exit 0 on SIGTERM."""
    station = write_station(tmp_path, postgres_url)
    leader_port, standby_port = free_port(), free_port()
    leader = serve(station, leader_port, "leader")
    standby = None
    try:
        assert poll(lambda: health(leader_port)["role"] == "leader", 10)
        standby = serve(station, standby_port, "standby")
        assert poll(lambda: health(standby_port)["role"] == "standby", 10)
        leader.terminate()
        assert leader.wait(20) == 0
        stopped = time.monotonic()
        took = poll(lambda: (h := health(standby_port))["role"] == "leader" and h, 10, every_s=0.02)
        assert took["epoch"] == 2 and time.monotonic() - stopped < 2.0, took
        standby.terminate()
        assert standby.wait(20) == 0
    finally:
        stop(leader)
        if standby is not None:
            stop(standby)
