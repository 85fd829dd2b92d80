"""Benchmark: SIGKILL the leader of a leader/standby pair again and again, drones in flight, intake load.

    python bench/failover.py [--kills 20] [--quick [--write]] [--no-doc] [--copters 4] [--rate 5] [--logs DIR]

Two `lastmile serve` processes on one station and one PostgreSQL store (a schema of its own, dropped at the
end; the server is `LASTMILE_TEST_POSTGRES_URL`, by default the local test database), simulated copters
(`sitl.copter`, 20 times real time) in this one. The load is what a van dispatcher behind a
load balancer sends: a steady stream of `POST /v1/packages` (heavy parcels, which go straight to the vans,
and every few seconds a light one for a drone, so that drones are always in the air), each retried with the
same key after a 503's `Retry-After` or a refused connection, alternating between the two controllers'
ports, until it is answered 201 or 200. Then, `--kills` times: wait until a drone is en route, SIGKILL the
current leader, time the standby's takeover, and start the killed one again as the new standby.

Figures, each from where it can be seen from outside:
- takeover: SIGKILL -> the standby's `/healthz` says `leader` (the lease), and -> `leader` with every
  copter linked (polled every 20 ms); SIGKILL -> the first POST the new leader answers 201 (intake back);
- intake: POSTs answered with something else than 201/200 or not at all (retried), and keys never
  answered 201/200 within `GIVE_UP_S` (errors: a dispatcher would have to act on them);
- accounting over the store at the end: keys answered 201/200 but absent (lost), packages whose history
  has `failed` or more than one `launching` (a drone that came back without delivering: a second attempt),
  packages delivered more than once, and what is still open.

The copters run in this process (`SimCopterFleet`), so the drones' side is measured too: SIGKILL -> every
copter has heard a GCS heartbeat from the new leader (the first thing a controller sends on a link, and what
the drone's FS_GCS_TIMEOUT counts), and the longest GCS silence a copter counted, in its own seconds.

Writes its section of docs/benchmarks.md unless --no-doc; `--quick` (3 kills, about 40 s) is a smoke test and
writes nothing unless --write, so `run_all.py --quick` keeps the last full run's figures (as other benches).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import machine, table, write_section  # noqa: E402
from controller.store import Store  # noqa: E402
from controller.tokens import hash_tokens, toml_inline  # noqa: E402
from sitl.copter import SimCopterFleet  # noqa: E402
from tests.e2e.serving import STATION, at, free_port  # noqa: E402
from tests.faults.accounting import account as account_keys  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOKEN = "failover-" + uuid.uuid4().hex[:8]
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SPEEDUP = 20
GIVE_UP_S = 60.0  # a dispatcher gives a key up (and calls it an error) after retrying it this long
TAKEOVER_TIMEOUT_S = 30.0
AIM_TAKEOVER_S = 3.0
TERMINAL = {"delivered", "van"}


@dataclass
class Key:
    """One submitted package as the dispatcher saw it."""

    key: str
    drone: bool
    first_try: float = 0.0
    done_at: float | None = None
    status: int | None = None  # the final answer: 201, 200, or the last failure (0: no answer)
    port: int | None = None  # which controller answered it
    retries: int = 0  # answers that were not 201/200, and refused or dropped connections
    failures: list[str] = field(default_factory=list)


@dataclass
class Kill:
    """One SIGKILL of the leader and what followed."""

    at: float
    in_flight: int
    wall: str = ""  # UTC time of the SIGKILL, to read beside the packages' histories
    leader_s: float | None = None
    linked_s: float | None = None
    intake_s: float | None = None
    epoch: int | None = None
    restart_s: float | None = None  # until the killed controller is a standby again
    heard_s: float | None = None  # until every copter has heard the new leader's GCS heartbeat
    silence_sim_s: float | None = None  # the longest GCS silence a copter counted, in its own seconds


class Dispatcher:
    """Sends packages like a van dispatcher behind a load balancer: each key until it is answered 201/200."""

    def __init__(self, ports: list[int], rate: float, rng: random.Random) -> None:
        self.ports = ports
        self.rate = rate
        self.rng = rng
        self.keys: dict[str, Key] = {}
        self.preferred = 0  # index into `ports` of the last controller that took a write
        self.successes: list[tuple[float, int]] = []  # (time, port) of every 201/200
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(headers=HEADERS, timeout=httpx.Timeout(10.0, connect=1.0))

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    def body(self, key: str, drone: bool) -> dict[str, Any]:
        if drone:  # a light parcel 1.2-2.4 km out: a drone's, one of a few minutes of drone time at 20x
            r, a = self.rng.uniform(1200, 2400), self.rng.uniform(0, 6.283)
            lat, lon = at(r * math.sin(a), r * math.cos(a))
            return {"key": key, "weight": 1.0, "dest_lat": lat, "dest_lon": lon}
        lat, lon = at(self.rng.uniform(-3000, 3000), self.rng.uniform(-3000, 3000))
        return {"key": key, "weight": 12.0, "dest_lat": lat, "dest_lon": lon}  # too heavy for all but a van

    def submit(self, key: str, drone: bool) -> None:
        task = asyncio.create_task(self._send(Key(key, drone)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, k: Key) -> None:
        self.keys[k.key] = k
        body = self.body(k.key, k.drone)
        k.first_try = time.monotonic()
        which = self.preferred
        while time.monotonic() - k.first_try < GIVE_UP_S:
            port = self.ports[which]
            try:
                r = await self._client.post(f"http://127.0.0.1:{port}/v1/packages", json=body)
            except httpx.TransportError as exc:  # killed, not up yet, or a connection cut mid-answer
                k.retries += 1
                k.failures.append(type(exc).__name__)
                which = 1 - which
                await asyncio.sleep(0.05)
                continue
            if r.status_code in (200, 201):
                k.done_at, k.status, k.port = time.monotonic(), r.status_code, port
                self.preferred = which
                self.successes.append((k.done_at, port))
                return
            k.retries += 1
            k.failures.append(str(r.status_code))
            k.status = r.status_code
            if r.status_code not in (503, 502, 500):  # 409/422: retrying the same body cannot help
                return
            with contextlib.suppress(ValueError):
                await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 5.0))
            which = 1 - which

    async def run(self, stop: asyncio.Event, store: Store, copters: int) -> None:
        """POSTs at `rate` per second; a drone parcel whenever fewer than `copters` packages are open."""
        n = 0
        start = time.monotonic()
        last_drone = 0.0
        while not stop.is_set():
            due = start + n / self.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            drone = False
            if now - last_drone > 2.0:
                open_now = await asyncio.to_thread(_open_count, store)
                drone = open_now < copters
                last_drone = now if drone else last_drone
            self.submit(f"k{n:06d}{'-d' if drone else ''}", drone)
            n += 1


def _open_count(store: Store) -> int:
    counts = store.count_by_state()
    return sum(v for s, v in counts.items() if s.value not in TERMINAL)


def _in_flight(store: Store) -> int:
    return store.count_by_state().get(_state("en_route"), 0)


def _state(name: str) -> Any:
    from controller.packages import PackageState

    return PackageState(name)


class ArmWatch:
    """When each copter was armed (sampled every 50 ms): whether a failed flight's drone ever took off."""

    def __init__(self, fleet: SimCopterFleet) -> None:
        self.fleet = fleet
        self.changes: dict[str, list[tuple[datetime, bool]]] = {
            f"d{i + 1}": [(datetime.now(UTC), c.armed)] for i, c in enumerate(fleet.vehicles)
        }

    async def run(self) -> None:
        while True:
            for i, c in enumerate(self.fleet.vehicles):
                seen = self.changes[f"d{i + 1}"]
                if seen[-1][1] != c.armed:
                    seen.append((datetime.now(UTC), c.armed))
            await asyncio.sleep(0.05)

    def armed_between(self, vehicle_id: str, t0: datetime, t1: datetime) -> bool:
        """Was the copter armed at any moment from `t0` to `t1` (within the 50 ms sampling)?"""
        t0, t1 = _aware(t0), _aware(t1)
        seen = self.changes.get(vehicle_id, [])
        before = [armed for at, armed in seen if at <= t0]
        return bool(before and before[-1]) or any(armed for at, armed in seen if t0 < at <= t1)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class Controllers:
    """The two `lastmile serve` processes, each on its own API port; either may lead."""

    def __init__(self, station: Path, ports: list[int]) -> None:
        self.station = station
        self.ports = ports
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, port: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
        with (self.station.parent / f"serve-{port}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "controller", "serve", "--station", str(self.station), "--port",
                 str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            )  # fmt: skip
        self.procs[port] = proc
        return proc

    def log(self, port: int) -> str:
        return (self.station.parent / f"serve-{port}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def health(client: httpx.AsyncClient, port: int) -> dict[str, Any] | None:
    try:
        r = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0)
        return r.json()  # type: ignore[no-any-return]
    except (httpx.TransportError, ValueError):
        return None


async def until(fn: Any, timeout_s: float, every_s: float, what: str) -> Any:
    """Await `fn()` until it returns something truthy, at most `timeout_s`; its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(every_s)


def write_station(workdir: Path, store_url: str, urls: list[str]) -> Path:
    station = workdir / "station.toml"
    text_ = (
        f'name = "failover"\nlat = {STATION[0]}\nlon = {STATION[1]}\nalt_m = 300.0\ntick_s = 1.0\n'
        f'vehicle_speedup = {SPEEDUP}\nstore_url = "{store_url}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = 8750\ntokens = {toml_inline(hash_tokens({TOKEN: "operator"}))}\n'
    )
    for i, url in enumerate(urls):
        text_ += f'[[fleet]]\nid = "d{i + 1}"\nkind = "drone"\nurl = "{url}"\n'
    station.write_text(text_)
    return station


@contextlib.contextmanager
def schema(base_url: str) -> Any:
    """A fresh PostgreSQL schema for this run (its URL), dropped afterwards."""
    name = f"lm_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


async def failover(
    store_url: str, workdir: Path, kills: int, copters: int, rate: float, seed: int
) -> dict[str, Any]:
    """The whole run; returns what it measured (see the module docstring)."""
    rng = random.Random(seed)
    fleet = SimCopterFleet(copters, home=(*STATION, 300.0, 0.0), speedup=SPEEDUP, base_port=0)
    await fleet.start()
    station = write_station(workdir, store_url, fleet.urls())
    ports = [free_port(), free_port()]
    ctl = Controllers(station, ports)
    store: Store | None = None
    dispatcher = Dispatcher(ports, rate, rng)
    stop = asyncio.Event()
    load: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    log: list[Kill] = []
    probe = httpx.AsyncClient()
    t_start = time.monotonic()
    try:
        leader, standby = ports
        ctl.spawn(leader)
        await until(
            lambda: _is(probe, leader, "leader", copters), 60, 0.1, "the first controller leads, all linked"
        )
        ctl.spawn(standby)
        await until(lambda: _is(probe, standby, "standby"), 60, 0.1, "the second controller is a standby")
        store = Store(store_url)
        load = asyncio.create_task(dispatcher.run(stop, store, copters))
        arming = ArmWatch(fleet)
        watcher = asyncio.create_task(arming.run())
        for i in range(kills):
            await until(lambda s=standby: _is(probe, s, "standby"), 60, 0.1, "a standby before the kill")
            await asyncio.sleep(rng.uniform(1.0, 3.0))  # some load on the new leader between two kills
            await until(
                lambda: asyncio.to_thread(_in_flight, store), 120, 0.1, "a drone en route before the kill"
            )
            await asyncio.sleep(rng.uniform(0.0, 2.0))  # anywhere in the flight, not always at its start
            in_flight = await asyncio.to_thread(_in_flight, store)
            ctl.procs[leader].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            kill = Kill(at=killed - t_start, in_flight=in_flight, wall=f"{datetime.now(UTC):%H:%M:%S.%f}")
            log.append(kill)
            await asyncio.to_thread(ctl.procs[leader].wait, 10)
            last_heard = [c.failsafes.gcs_last_seen or 0.0 for c in fleet.vehicles]  # the dead leader's last
            while time.monotonic() - killed < TAKEOVER_TIMEOUT_S and kill.linked_s is None:
                h = await health(probe, standby)
                now = time.monotonic() - killed
                if h and h.get("role") == "leader":
                    kill.leader_s = kill.leader_s or now
                    kill.epoch = h.get("epoch")
                    if h.get("vehicles_linked") == copters:
                        kill.linked_s = now
                await asyncio.sleep(0.02)
            while time.monotonic() - killed < TAKEOVER_TIMEOUT_S:  # the drones' side: the new heartbeat
                heard = [c.failsafes.gcs_last_seen or 0.0 for c in fleet.vehicles]
                if all(h > last for h, last in zip(heard, last_heard, strict=True)):
                    kill.heard_s = time.monotonic() - killed
                    kill.silence_sim_s = max(h - last for h, last in zip(heard, last_heard, strict=True))
                    break
                await asyncio.sleep(0.02)
            if kill.linked_s is None:
                raise RuntimeError(
                    f"kill {i + 1}: no takeover within {TAKEOVER_TIMEOUT_S} s\n{ctl.log(standby)}"
                )
            ctl.spawn(leader)  # the killed one comes back, as the new standby
            await until(lambda p=leader: _is(probe, p, "standby"), 60, 0.1, "the killed one stands by again")
            kill.restart_s = time.monotonic() - killed
            first = [t for t, port in dispatcher.successes if t > killed and port == standby]
            kill.intake_s = (min(first) - killed) if first else None
            print(
                f"kill {i + 1}/{kills} at {kill.wall}: {in_flight} en route; leader after "
                f"{kill.leader_s:.2f} s, all {copters} linked after {kill.linked_s:.2f} s and heard after "
                f"{_s(kill.heard_s)} (GCS silence {kill.silence_sim_s or 0:.0f} drone s), first 201 after "
                f"{_s(kill.intake_s)}, epoch {kill.epoch}; standby again after {kill.restart_s:.1f} s",
                flush=True,
            )
            leader, standby = standby, leader
        stop.set()
        await load
        await dispatcher.aclose()
        # Let every flight end: nothing is open once the drones have delivered the last parcels.
        with contextlib.suppress(TimeoutError):
            await until(
                lambda: asyncio.to_thread(lambda: _open_count(store) == 0), 300, 0.5, "every package ends"
            )
        watcher.cancel()
        result = account(store, dispatcher, log, copters, arming)
        result["gcs_failsafes"] = sum(
            t.startswith("GCS Failsafe") for c in fleet.vehicles for t in c.statustexts
        )
        result["fs_gcs_timeout"] = fleet.vehicles[0].params["FS_GCS_TIMEOUT"]
        result["tracebacks"] = sum(ctl.log(p).count("Traceback") for p in ports)
        result["never_retrieved"] = sum(ctl.log(p).count("Task exception was never retrieved") for p in ports)
        result["wall_s"] = time.monotonic() - t_start
        return result
    finally:
        stop.set()
        for task in (load, watcher):
            if task is not None and not task.done():
                task.cancel()
        await probe.aclose()
        if store is not None:
            store.close()
        ctl.stop_all()
        await fleet.stop()


async def _is(client: httpx.AsyncClient, port: int, role: str, linked: int | None = None) -> bool:
    h = await health(client, port)
    return bool(h and h.get("role") == role and (linked is None or h.get("vehicles_linked") == linked))


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def account(
    store: Store, dispatcher: Dispatcher, kills: list[Kill], copters: int, arming: ArmWatch
) -> dict[str, Any]:
    """Every key against the store: lost, returned, delivered twice, still open; and the intake figures."""
    keys = dispatcher.keys.values()
    answered = [k for k in keys if k.status in (200, 201)]
    gave_up = [k for k in keys if k.status not in (200, 201)]
    lost: list[str] = []
    returned: list[str] = []
    on_ground: list[str] = []  # recorded failed, though the drone never armed
    relaunched: list[str] = []  # back in the queue as not launched, the drone never armed: as it should be
    twice: list[str] = []
    states: Counter[str] = Counter()
    drone_delivered = 0
    for k in answered:
        package = store.get_by_key(k.key)
        if package is None:
            lost.append(k.key)
            continue
        states[package.state.value] += 1
        events = store.history(package.id)
        history = [e.to_state.value for e in events]
        if history.count("delivered") > 1:
            twice.append(k.key)
        if "failed" in history or history.count("launching") > 1:
            why = "; ".join(f"{e.to_state.value}: {e.reason}" for e in events if e.to_state.value == "failed")
            trail = " -> ".join(f"{e.to_state.value} {e.at:%H:%M:%S.%f}" for e in events)
            if "failed" not in history and _requeued_on_the_ground(store, events, arming):
                relaunched.append(f"{k.key}: {trail}")  # a controller change before take-off: no attempt
            else:
                grounded = _failed_on_the_ground(store, events, arming)
                (on_ground if grounded else returned).append(f"{k.key}: {trail} ({why})")
        if k.drone and package.state.value == "delivered":
            drone_delivered += 1
    checked = account_keys(store, [k.key for k in answered])
    delays = sorted(k.done_at - k.first_try for k in answered if k.done_at is not None)
    leader = [k.leader_s for k in kills if k.leader_s is not None]
    linked = [k.linked_s for k in kills if k.linked_s is not None]
    intake = [k.intake_s for k in kills if k.intake_s is not None]
    heard = [k.heard_s for k in kills if k.heard_s is not None]
    return {
        "kills": len(kills),
        "copters": copters,
        "leader_p50": statistics.median(leader),
        "leader_max": max(leader),
        "linked_p50": statistics.median(linked),
        "linked_max": max(linked),
        "intake_p50": statistics.median(intake) if intake else None,
        "intake_max": max(intake) if intake else None,
        "heard_p50": statistics.median(heard) if heard else None,
        "heard_max": max(heard) if heard else None,
        "silence_max": max((k.silence_sim_s for k in kills if k.silence_sim_s is not None), default=0.0),
        "restart_p50": statistics.median(k.restart_s for k in kills if k.restart_s is not None),
        "in_flight": sum(k.in_flight for k in kills),
        "submitted": len(dispatcher.keys),
        "drone_keys": sum(k.drone for k in keys),
        "drone_delivered": drone_delivered,
        "answered": len(answered),
        "answered_200": sum(k.status == 200 for k in answered),
        "retried": sum(k.retries > 0 for k in answered),
        "retries": sum(k.retries for k in keys),
        "failure_kinds": Counter(f for k in keys for f in k.failures),
        "errors": len(gave_up),
        "error_list": [f"{k.key}: {k.status} after {k.failures}" for k in gave_up],
        "delay_p50": delays[len(delays) // 2] if delays else 0.0,
        "delay_max": delays[-1] if delays else 0.0,
        "lost": lost,
        "returned": returned,
        "on_ground": on_ground,
        "relaunched": relaunched,
        "twice": twice,
        "states": dict(states),
        # tests/faults/accounting.py's checks: vehicles booked twice, missions left open.
        "booked_twice": [p for p in checked.problems if "booked twice" in p],
        "open_missions": [p for p in checked.problems if p.startswith("mission ")],
    }


def _requeued_on_the_ground(store: Store, events: list[Any], arming: ArmWatch) -> bool:
    """True when every return to the queue from `launching` says "not launched" and came before its drone
    armed: a controller change while the drone was prepared, which must cost the package no attempt."""
    backs = [
        i
        for i, e in enumerate(events)
        if e.to_state.value == "received" and i > 0 and events[i - 1].to_state.value == "launching"
    ]
    if not backs:
        return False
    for i in backs:
        mission_id = (events[i].detail or {}).get("mission_id")
        if not (events[i].reason or "").startswith("not launched") or mission_id is None:
            return False
        vehicle = store.get_mission(mission_id).vehicle_id
        if arming.armed_between(vehicle, events[i - 1].at, events[i].at):
            return False
    return True


def _failed_on_the_ground(store: Store, events: list[Any], arming: ArmWatch) -> bool:
    """True when every failure of this package came before its drone armed: the flight never left, and the
    failure on record is the controller's word, not a drone that came back (a relaunch without a failure
    counts as a return)."""
    failures = [i for i, e in enumerate(events) if e.to_state.value == "failed"]
    if not failures:
        return False
    for i in failures:
        launch = next((e for e in reversed(events[:i]) if e.to_state.value == "launching"), None)
        mission_id = (events[i].detail or {}).get("mission_id")
        if launch is None or mission_id is None:
            return False
        vehicle = store.get_mission(mission_id).vehicle_id
        if arming.armed_between(vehicle, launch.at, events[i].at):
            return False
    return True


def report(r: dict[str, Any]) -> str:
    """The figures as printed and as written to the doc."""
    copters, leader, linked = r["copters"], r["leader_p50"], r["linked_p50"]
    rows = [
        ["SIGKILLs of the leader", f"{r['kills']} ({r['in_flight']} drones en route at the kills in all)"],
        ["takeover: SIGKILL -> standby's /healthz says leader",
         f"p50 {leader:.2f} s, max {r['leader_max']:.2f} s"],
        [f"takeover: SIGKILL -> leader with all {copters} copters linked",
         f"**p50 {linked:.2f} s, max {r['linked_max']:.2f} s**"],
        [f"takeover: SIGKILL -> all {copters} copters hear the new leader's heartbeat",
         f"**p50 {_s(r['heard_p50'])}, max {_s(r['heard_max'])}**"],
        ["longest GCS silence a copter counted (its FS_GCS_TIMEOUT) / GCS failsafes fired",
         f"{r['silence_max']:.1f} s ({r['fs_gcs_timeout']:g} s) of drone time / {r['gcs_failsafes']}"],
        ["SIGKILL -> first POST answered 201 by the new leader",
         f"p50 {_s(r['intake_p50'])}, max {_s(r['intake_max'])}"],
        ["SIGKILL -> the killed controller is a standby again", f"p50 {r['restart_p50']:.1f} s"],
        ["packages submitted (for drones)", f"{r['submitted']:,} ({r['drone_keys']})"],
        ["answered 201/200 (200: stored before the kill, answer lost)",
         f"{r['answered']:,} ({r['answered_200']})"],
        ["POSTs retried (503, refused or cut connection)", f"{r['retried']} keys, {r['retries']} retries"],
        ["intake errors (keys never answered 201/200)", f"**{r['errors']}**"],
        ["intake delay of a key, first try -> 201",
         f"p50 {r['delay_p50'] * 1000:.0f} ms, max {r['delay_max']:.2f} s"],
        ["packages lost (answered 201/200, absent from the store)", f"**{len(r['lost'])}**"],
        ["drones that took off and came back without delivering", f"**{len(r['returned'])}**"],
        ["parcels recorded failed though their drone never armed", f"**{len(r['on_ground'])}**"],
        ["parcels put back in the queue before their drone armed (not launched: no attempt spent)",
         str(len(r["relaunched"]))],
        ["delivered twice", f"**{len(r['twice'])}**"],
        ["vehicles booked twice / missions left open",
         f"{len(r['booked_twice'])} / {len(r['open_missions'])}"],
        ["drone parcels delivered", f"{r['drone_delivered']} of {r['drone_keys']}"],
        ["end states", ", ".join(f"{s} {n:,}" for s, n in sorted(r["states"].items()))],
        ["tracebacks / 'Task exception was never retrieved' in the logs",
         f"{r['tracebacks']} / {r['never_retrieved']}"],
    ]  # fmt: skip
    return table(["figure", "value"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs of the leader (20; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="3 kills; the doc untouched unless --write")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md even with --quick")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--copters", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="POSTs per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", type=Path, default=None, help="copy the controllers' logs to this folder")
    parser.add_argument("--postgres", default=os.environ.get("LASTMILE_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    args = parser.parse_args()
    kills = args.kills or (3 if args.quick else 20)
    try:
        create_engine(args.postgres).connect().close()
    except OperationalError as exc:  # run_all on a machine without the database: say so, keep the doc
        print(f"skipped: no PostgreSQL at {args.postgres} ({str(exc.orig).strip().splitlines()[0]})")
        return 0
    with schema(args.postgres) as url, tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        try:
            r = asyncio.run(failover(url, Path(tmp), kills, args.copters, args.rate, args.seed))
        except BaseException:
            for log in sorted(Path(tmp).glob("serve-*.log")):
                print(
                    f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                )
            raise
        finally:
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("serve-*.log"):
                    shutil.copy(log, args.logs / log.name)
    out = report(r)
    print(out)
    for what in ("lost", "returned", "on_ground", "twice", "error_list", "booked_twice", "open_missions"):
        for line in r[what][:20]:
            print(f"{what}: {line}")
    print(f"failures seen by the dispatcher: {dict(r['failure_kinds'])}; wall {r['wall_s']:.0f} s")
    ok = not (r["lost"] or r["returned"] or r["on_ground"] or r["twice"] or r["booked_twice"])
    if not args.no_doc and (args.write or not args.quick):
        write_section("failover", "Failover: SIGKILL of the leader under load", _doc(r, args, kills, out))
    return 0 if ok else 1


def _doc(r: dict[str, Any], args: argparse.Namespace, kills: int, out: str) -> str:
    aim = "**met**" if r["linked_max"] <= AIM_TAKEOVER_S else "**not met**"
    clean = not (r["lost"] or r["returned"] or r["twice"] or r["booked_twice"])
    how = f"python bench/failover.py{' --quick' if args.quick else ''}" + (
        f" --kills {args.kills}" if args.kills else ""
    )
    return (
        f"`{how}` — a leader and a hot standby `lastmile serve` on one station and one PostgreSQL store, "
        f"{args.copters} simulated copters (`sitl.copter`, {SPEEDUP}x real time) in the bench's process, so "
        "it sees what the drones see; a "
        f"dispatcher posts {args.rate:g} packages/s (heavy ones, to vans, and a light one for a drone every "
        "2 s when fewer packages than copters are open), retrying each key after a 503's Retry-After or a "
        "refused connection on the other controller's port until it is answered 201/200. "
        f"{kills} times: 1-3 s after the last takeover, wait until a drone is en route (then 0-2 s more), "
        "SIGKILL the leader, poll the standby's `/healthz` every 20 ms, restart the killed one as the new "
        "standby. At the end, once every flight has ended, every key is checked against the store "
        "(tests/faults/accounting.py). 'Hear the new leader' is the drones' own view: each copter's last GCS "
        "heartbeat (what its FS_GCS_TIMEOUT counts from), the first a new leader sends once it has linked; "
        "the GCS silence is counted in the drones' time (20x). "
        "No robots here (tests/faults/test_takeover_robot.py kills a leader mid-drive). "
        f"Run {r['wall_s'] / 60:.1f} min on {machine()} (2 cores shared with other work).\n\n"
        + out
        + "".join(f"\n\nCame back: {line}" for line in r["returned"][:5])
        + "".join(f"\n\nFailed on the ground: {line}" for line in r["on_ground"][:5])
        + f"\n\nThe issue's aims: takeover <= {AIM_TAKEOVER_S:g} s — {aim} (max {r['linked_max']:.2f} s); "
        + (
            "0 lost, 0 returned, 0 delivered twice — **met**"
            if clean
            else "0 lost / returned / twice — **not met**"
        )
        + (
            f"; {len(r['on_ground'])} parcel(s) recorded failed though their drone never took off (a kill "
            "during mission upload: the known bug in tests/faults/test_drone_link_faults.py)."
            if r["on_ground"]
            else "."
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
