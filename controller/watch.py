"""`lastmile watch`: the station on one terminal screen, kept live.

What an operator watches: every vehicle (link, battery, where it is from the station, altitude, speed,
mode, mission), every mission under way with a progress bar, the package queue by state, and the latest
events in words. It follows the web console's channel (`GET /v1/console/live`: the station's events plus
a telemetry frame four times a second) and re-reads the mission list (`GET /v1/map`: routes and the
tracks flown so far, in metres from the station) and the queue counts (`GET /v1/fleet`) when events say
they changed, at most once a second each. A lost connection is retried with backoff and resumes after the
last event seen, so nothing is missed; only a refused token ends it.

A mission's progress is the distance its vehicle has covered over the planned out-and-back length, as the
web console's map shows it (`controller/web/static/map.js`): drones and robots both return to the station.
The track the dashboard starts from is the server's, so a watch opened mid-flight shows the right figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from controller.client import ApiError, Unreachable, answer_of
from controller.reasons import M_PER_MI

__all__ = [
    "Dashboard",
    "MissionView",
    "clock",
    "describe",
    "event_line",
    "follow",
    "phase_of",
    "position_text",
]

EVENTS_SHOWN = 10
RELOAD_S = 1.0  # the mission list and the queue are re-read at most this often
REDRAW_S = 0.25  # the screen is redrawn at most this often (telemetry comes at 4 Hz)
TRACK_STEP_M = 3.0  # as the server's tracks (controller.web.live.TRACK_MIN_STEP_M): closer adds only noise
AT_STATION_M = 30.0
BAR_WIDTH = 6  # with the rest, the fleet table fits 80 columns (10.4 km/6.5 mi NE, 115 m, STABILIZE)
LOW_CHARGE = 0.3  # the web console's "low" too
_CARRIED = frozenset({"assigned", "launching", "en_route", "delivered"})  # states that name a vehicle
_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
# Two clocks: an event's time (`at`) is when the station saw it, on its host's wall clock; an ETA is on the
# station's planning clock, which is the wall clock too except in `lastmile demo`, where it runs `speedup`
# times faster ("sim"). Every time is shown with its clock and its zone, UTC (a station file names no zone).
_BUS = frozenset({"seq", "at", "type", "t"})  # the bus's own fields, shown before the words
WALL = "wall"
SIM = "sim"
ZONE = "UTC"
_SKIP = frozenset({"seq", "at", "type", "t", "mission_id", "package_id", "vehicle_id", "vehicle", "package"})


def position_text(x: float | None, y: float | None) -> str:
    """Where a vehicle is, in words an operator reads at a glance: distance (km and mi) and compass point."""
    if x is None or y is None:
        return "-"
    distance = math.hypot(x, y)
    if distance < AT_STATION_M:
        return "at station"
    bearing = math.degrees(math.atan2(x, y)) % 360  # x east, y north: 0 is north, 90 east
    point = _COMPASS[round(bearing / 45) % 8]
    if distance < 999.5:  # "1000 m" reads as a kilometre
        return f"{distance:.0f} m {point}"
    return f"{distance / 1000:.1f} km/{distance / M_PER_MI:.1f} mi {point}"


def _path_length(points: Iterable[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(points))


@dataclass
class MissionView:
    """One unfinished mission as the dashboard shows it."""

    id: str
    vehicle_id: str
    package_id: str
    kind: str
    state: str
    planned_m: float  # out and back along the planned route
    package_key: str | None = None
    covered_m: float = 0.0
    last: tuple[float, float] | None = None

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> MissionView:
        """From one of `GET /v1/map`'s missions (route and track in metres from the station)."""
        route = [(float(p[0]), float(p[1])) for p in data.get("route") or []]
        track = [(float(p[0]), float(p[1])) for p in data.get("track") or []]
        return cls(
            id=data["id"],
            vehicle_id=data["vehicle_id"],
            package_id=data["package_id"],
            kind=data["kind"],
            state=data["state"],
            planned_m=2 * _path_length(route),
            package_key=data.get("package_key"),
            covered_m=_path_length(track),
            last=track[-1] if track else None,
        )

    def follow(self, x: float, y: float) -> None:
        """Add the vehicle's newest position to the distance covered."""
        if self.last is None:
            self.last = (x, y)
            return
        step = math.hypot(x - self.last[0], y - self.last[1])
        if step >= TRACK_STEP_M:
            self.covered_m += step
            self.last = (x, y)

    @property
    def progress(self) -> float | None:
        """0..1, or None for a mission without a planned route."""
        if self.planned_m <= 0:
            return None
        return min(1.0, self.covered_m / self.planned_m)


@dataclass
class Dashboard:
    """The station's state as `lastmile watch` shows it; fed with what the API sends, drawn by `render`."""

    station: str = ""
    grounded: str | None = None
    vehicles: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> telemetry entry
    missions: dict[str, MissionView] = field(default_factory=dict)
    queue: dict[str, int] = field(default_factory=dict)
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))
    phases: dict[str, str] = field(default_factory=dict)  # mission id -> its vehicle's latest phase
    keys: dict[str, str] = field(default_factory=dict)  # package id -> the dispatcher's key
    last_seq: int = 0
    telemetry_seen: bool = False
    station_seq: int = 0  # the newest event when the fleet was last read
    trouble: str | None = None  # why the screen may be stale (connection lost), shown on top
    eta_clock: str = WALL  # the clock the station's ETAs are on: "sim" in the demo
    verbose: bool = False  # events with every field (ids and all) after their words

    def load_map(self, data: dict[str, Any]) -> None:
        """Take the unfinished missions from `GET /v1/map`."""
        self.missions = {m["id"]: MissionView.from_map(m) for m in data.get("missions", [])}
        for m in self.missions.values():
            if m.package_key:
                _remember(self.keys, m.package_id, m.package_key)
        self.station = data.get("station", {}).get("name", self.station)
        self.grounded = data.get("grounded")

    def load_fleet(self, data: dict[str, Any]) -> None:
        """Take the queue counts (and the hold) from `GET /v1/fleet`."""
        self.queue = dict(data.get("queue", {}))
        self.station_seq = int(data.get("last_event", 0))
        self.station = data.get("station", self.station)
        self.grounded = data.get("grounded_reason") if data.get("grounded") else None
        self.eta_clock = SIM if data.get("clock") == SIM else self.eta_clock  # the station says its clock

    def apply(self, message: dict[str, Any]) -> set[str]:
        """Take one message of the live channel; what it made stale (`"missions"`, `"queue"`)."""
        kind = message.get("type")
        if kind == "reconnected":  # anything may have changed while the channel was down
            return {"missions", "queue"}
        if kind == "hello":
            self.station = message.get("station", self.station)
            return set()
        if kind == "telemetry":
            self._telemetry(message.get("vehicles", []))
            return set()
        self.last_seq = max(self.last_seq, int(message.get("seq", 0)))
        self.events.append(message)
        if kind == "package":
            if message.get("package_id") and message.get("key"):
                _remember(self.keys, message["package_id"], message["key"])
            return {"queue"}
        if kind == "mission":
            return {"missions", "queue"}
        if kind == "fleet":
            grounded = message.get("state") == "grounded"
            self.grounded = (message.get("reason") or "grounded") if grounded else None
        elif kind == "vehicle":
            phase = phase_of(message)
            if message.get("mission_id") and phase:
                _remember(self.phases, message["mission_id"], phase)
        return set()

    def _telemetry(self, vehicles: list[dict[str, Any]]) -> None:
        self.telemetry_seen = True
        self.vehicles = {v["id"]: v for v in vehicles if v.get("kind") != "van"}  # vans send no telemetry
        for v in vehicles:
            mission = self.missions.get(v.get("mission") or "")
            if mission is not None and v.get("x") is not None and v.get("y") is not None:
                mission.follow(float(v["x"]), float(v["y"]))

    # --- drawing -------------------------------------------------------------------------------------------

    def render(self, console: Console | None = None) -> RenderableType:
        """The whole screen; on a terminal `console`, only as many events as fit below the rest.

        A live display cuts what does not fit at the bottom: the newest events would go first.
        """
        parts: list[RenderableType] = [self._header()]
        if self.vehicles:
            parts.append(self._fleet_table())
        parts.append(self._missions_table())
        parts.append(self._queue_line())
        shown = EVENTS_SHOWN
        if console is not None and console.is_terminal:
            used = len(console.render_lines(Group(*parts), console.options, pad=False))
            shown = max(0, console.size.height - used - 2)  # the events' title, and the cursor's line
        parts.append(self._events_table(shown))
        return Group(*parts)

    def _header(self) -> Text:
        online = sum(bool(v.get("online")) for v in self.vehicles.values())
        text = Text.assemble(
            (self.station or "station", "bold"),
            f"  {online}/{len(self.vehicles)} vehicles online  ",
            (f"{WALL} {time.strftime('%H:%M:%S', time.gmtime())} {ZONE}", "dim"),
        )
        if self.grounded:
            text.append(f"\nFLEET GROUNDED: {self.grounded}", style="bold yellow")
        if self.trouble:
            text.append(f"\n{self.trouble}", style="bold red")
        return text

    def _fleet_table(self) -> Table:
        table = _table("vehicles")
        for column in ("vehicle", "kind", "link", "battery", "position", "alt", "speed", "mode"):
            table.add_column(column, no_wrap=True)
        for v in self.vehicles.values():
            alt = v.get("alt")
            speed = v.get("spd")
            table.add_row(
                v["id"],
                v.get("kind", ""),
                _link(v),
                _battery(v.get("c")),
                position_text(v.get("x"), v.get("y")),
                f"{alt:.0f} m" if alt is not None and v.get("kind") == "drone" else "-",
                _speed(speed),
                v.get("mode") or "-",
            )
        return table

    def _missions_table(self) -> RenderableType:
        if not self.missions:
            return Text("no mission under way", style="dim")
        table = _table("missions")
        for column in ("mission", "vehicle", "package", "state", "phase", "progress"):
            table.add_column(column, no_wrap=True)
        for m in sorted(self.missions.values(), key=lambda m: m.id):
            package = m.package_key or m.package_id
            phase = self.phases.get(m.id, "-")
            state = m.state.replace("_", " ")
            table.add_row(m.id[:8], m.vehicle_id, package, state, phase, _progress(m))
        return table

    def _queue_line(self) -> Text:
        counts = [f"{state.replace('_', ' ')} {n}" for state, n in self.queue.items() if n]
        return Text.assemble(("packages  ", "bold"), " · ".join(counts) or "none")

    def _events_table(self, shown: int) -> Table:
        table = Table(
            title=f"recent events ({WALL} clock)",
            title_justify="left",
            title_style="bold",
            show_header=False,
            box=None,
        )
        table.add_column("time", style="dim", no_wrap=True)
        table.add_column("event")
        for event in list(self.events)[len(self.events) - shown :] if shown else []:
            words = describe(event, self.keys, verbose=self.verbose, eta_clock=self.eta_clock)
            table.add_row(clock(event.get("at")), words)
        return table


def _table(title: str) -> Table:
    """Light rules and no outer border: the whole screen fits 80 columns."""
    return Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
        padding=(0, 1), collapse_padding=True, pad_edge=False,
    )  # fmt: skip


def _link(vehicle: dict[str, Any]) -> Text:
    if not vehicle.get("online"):
        return Text("offline", style="red")
    age = vehicle.get("age")
    if age is not None and age > 3:
        return Text(f"{age:.0f} s old", style="yellow")
    if vehicle.get("err"):
        return Text(", ".join(vehicle["err"]), style="red")
    return Text("ok", style="green")


def _bar(fraction: float, style: str) -> Table:
    """A bar and its percentage, on one line."""
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        ProgressBar(
            total=1.0, completed=fraction, width=BAR_WIDTH, complete_style=style, finished_style=style
        ),
        Text(f"{fraction * 100:3.0f} %"),
    )
    return grid


def _speed(speed: float | None) -> str:
    """m/s to a tenth when slow (a robot's 1.7), whole when fast (a drone's 22): a column that fits."""
    if speed is None:
        return "-"
    return f"{speed:.1f} m/s" if speed < 9.95 else f"{speed:.0f} m/s"


def _battery(charge: float | None) -> RenderableType:
    if charge is None:
        return "-"
    return _bar(charge, "red" if charge < LOW_CHARGE else "green")


def _progress(mission: MissionView) -> RenderableType:
    if mission.state == "held":
        return Text("waiting for launch", style="yellow")
    progress = mission.progress
    return "-" if progress is None else _bar(progress, "cyan")


# --- events in words ---------------------------------------------------------------------------------------


def clock(iso: str | None, *, seconds: bool = True) -> str:
    """An ISO time as HH:MM:SS (or HH:MM) UTC, the zone named; "--:--:--" when there is none."""
    if not iso:
        return "--:--:--"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return str(iso)
    if when.tzinfo is None:  # the station stamps every time with its zone; a bare one is taken as UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%H:%M:%S" if seconds else "%H:%M") + f" {ZONE}"


def event_line(
    event: dict[str, Any], keys: dict[str, str] | None = None, *, verbose: bool = False, eta_clock: str = WALL
) -> str:
    """`watch --events`' line: sequence number, the wall-clock time and the event in words."""
    words = describe(event, keys, verbose=verbose, eta_clock=eta_clock)
    return f"{event.get('seq', 0):>6} {WALL} {clock(event.get('at'))} {words}"


def _remember(memory: dict[str, str], key: str, value: str, limit: int = 10_000) -> None:
    """`memory[key] = value`, forgetting the older half past `limit`: a watch may run for weeks."""
    memory.pop(key, None)  # re-inserted: the newest stays last
    memory[key] = value
    if len(memory) > limit:
        for old in list(itertools.islice(memory, limit // 2)):
            del memory[old]


def _short(value: Any) -> str:
    return str(value)[:8] if value else "?"


def _value(value: Any) -> str:
    """A field's value for `key=value`: numbers rounded, positions to 5 decimals (about 1 m)."""
    if isinstance(value, float):
        return f"{value:.1f}"
    if _is_position(value):
        return _latlon(value)
    return str(value)


def _is_position(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, float | int) and not isinstance(v, bool) for v in value)
    )


def _latlon(position: Any) -> str:
    """A (lat, lon) pair in degrees to 5 decimals: about a metre, as much as a GPS fix says."""
    return f"{float(position[0]):.5f}, {float(position[1]):.5f}"


def _extras(event: dict[str, Any], skip: Iterable[str] = (), *, everything: bool = False) -> str:
    """The event's other fields as `key=value`, numbers rounded: what has no sentence, and (`everything`:
    ids too) `--verbose`."""
    skipped = (_BUS if everything else _SKIP) | set(skip)
    words = []
    for key, value in event.items():
        if key in skipped or value is None or value == [] or value == {}:
            continue
        words.append(f"{key}={_value(value)}")
    return " ".join(words)


def _details(event: dict[str, Any], verbose: bool) -> str:
    """With `--verbose`: every field of the event, ids and all, after the words."""
    if not verbose:
        return ""
    rest = _extras(event, everything=True)
    return f" [{rest}]" if rest else ""


def describe(
    event: dict[str, Any],
    keys: dict[str, str] | None = None,
    *,
    verbose: bool = False,
    eta_clock: str = WALL,
) -> str:
    """One line of plain words for a station event (the dashboard's and `watch --events`' lines).

    `keys` (package id -> key) names packages by the dispatcher's key where an event carries only the id
    (a package id's first characters are its time, alike for a whole day); package events add to it.
    Internal ids (robot orders, node ids, flags) are left out; `verbose` adds every field after the words.
    `eta_clock` names the clock ETAs are on (`"sim"` in the demo).
    """
    return _words(event, keys, eta_clock) + _details(event, verbose)


def _words(event: dict[str, Any], keys: dict[str, str] | None, eta_clock: str) -> str:
    kind = event.get("type")
    known = keys if keys is not None else {}
    if kind == "package":
        if event.get("package_id") and event.get("key"):
            _remember(known, event["package_id"], event["key"])
        return _package_words(event, eta_clock)
    if kind == "mission":
        package = known.get(event.get("package_id") or "") or _short(event.get("package_id"))
        state = str(event.get("state") or "?").replace("_", " ")
        text = f"mission {_short(event.get('mission_id'))} {state}: {event.get('vehicle_id')}"
        text += f" with package {package}"
        return text + (f" ({event['reason']})" if event.get("reason") else "")
    if kind == "vehicle":
        return _vehicle_words(event)
    if kind == "fleet":
        if event.get("state") == "grounded":
            return f"fleet grounded: {event.get('reason') or 'no reason given'}"
        return "fleet released" if event.get("state") == "released" else f"fleet {_extras(event)}"
    if kind == "station" and event.get("state") in ("closed", "open"):
        reason = f": {event['reason']}" if event.get("reason") else ""
        return f"station {'closed to drones' if event['state'] == 'closed' else 'open to drones'}{reason}"
    if kind == "service":
        return f"station {event.get('station', '')} {event.get('state', '')}".replace("  ", " ")
    return f"{kind} {_extras(event)}"


def _package_words(event: dict[str, Any], eta_clock: str) -> str:
    state = str(event.get("state", "?"))
    text = f"package {event.get('key') or _short(event.get('package_id'))} {state.replace('_', ' ')}"
    vehicle = event.get("vehicle_id")
    if vehicle and state in _CARRIED:
        text += f" by {event.get('mode') or 'vehicle'} {vehicle}"
    if state == "van" and event.get("reasons"):
        text += ": " + ", ".join(event["reasons"])
    reason = event.get("reason")
    said = bool(vehicle) and vehicle in str(reason) and state in _CARRIED  # "(launching d3)" says it twice
    if reason and reason != state and not said:
        text += f" ({reason})"
    eta = event.get("eta")
    if eta and state in ("received", "assigned", "launching", "en_route"):
        text += f", ETA {eta_clock} {clock(eta, seconds=False)}"
    return text


# The drone driver's events (vehicles.mavlink.telemetry), by class name, in words.
_DRONE_EVENT_WORDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ModeChanged": lambda e: f"flight mode {e.get('old') or '?'} → {e.get('new')}",
    "ArmedChanged": lambda e: "armed" if e.get("armed") else "disarmed",
    "MissionItemReached": lambda e: f"reached waypoint {e.get('item')}",  # the bus's `seq` is its own
    "StatusText": lambda e: f"says: {e.get('text')}",
    "BatteryFailsafe": lambda e: f"battery failsafe ({e.get('level')}): {e.get('text')}",
    "FenceBreach": lambda e: f"fence breach (type {e.get('breach_type')})",
    "LinkLost": lambda e: f"link lost ({e.get('silent_s', 0):.0f} s silent)",
    "LinkRestored": lambda e: f"link restored after {e.get('down_s', 0):.0f} s",
}

# A drone flight's phases (controller.missions.drone), in words: the event line's and the dashboard's.
_DRONE_PHASES = {
    "safety_params": ("setting its safety parameters", "preparing"),
    "fence_upload": ("loading its geofence", "preparing"),
    "rally_upload": ("loading its rally points", "preparing"),
    "mission_upload": ("loading its mission", "preparing"),
    "waiting_ready": ("waiting for the autopilot to be ready", "preparing"),
    "waiting_launch": ("waiting for its launch time", "waiting to launch"),
    "arming": ("arming", "arming"),
    "flying": ("took off for the customer", "flying out"),
    "resumed": ("followed again after a controller change", "flying"),
}


def _done_words(event: dict[str, Any]) -> str:
    """A flight's end: where the package and the drone are, and the energy it took."""
    text = "landed: package " + ("delivered" if event.get("delivered") else "not delivered")
    text += ", back at the station" if event.get("returned") else ", away from the station"
    energy = event.get("energy_used_wh")
    return text + (f", {energy:.0f} Wh used" if isinstance(energy, int | float) else "")


def _airspace_words(event: dict[str, Any]) -> str:
    state, pad = event.get("state"), event.get("landing_pad") or event.get("pad")
    on_pad = f" on pad {pad}" if pad else ""
    if state == "holding":
        return f"cleared to land{on_pad}" if event.get("cleared") else f"holding for a landing slot{on_pad}"
    if state == "cleared":
        return f"landing{on_pad}"
    if state == "waiting_launch":
        return f"waiting for a launch slot{on_pad}"
    if state == "to_rally":
        return "flying to a rally point (the station is closed)"
    if state in ("divert_failed", "clearance_failed"):
        return f"airspace: {str(state).replace('_', ' ')}: {event.get('error')}"
    return f"airspace: {str(state or '?').replace('_', ' ')}"


def _node_leg(node_id: Any) -> str | None:
    """Which way a robot's trip node lies: its ids end in -out<N>, -back<N> or -home<N> (missions.robot)."""
    tail = str(node_id or "").rsplit("-", 1)[-1]
    if tail.startswith("out"):
        return "out"
    if tail.startswith(("back", "home")):
        return "back"
    return None


def _at(event: dict[str, Any]) -> str:
    position = event.get("position")
    return f" at {_latlon(position)}" if _is_position(position) else ""


def _robot_words(event: dict[str, Any]) -> str | None:
    """A robot trip's note (controller.missions.robot) in words; None for a kind without a sentence."""
    kind, status = event.get("kind"), str(event.get("status") or "").upper()
    if kind == "order_sent":
        if event.get("resend"):
            return "sent its order again (no answer yet)"
        if (event.get("update_id") or 0) >= 1:
            return "was sent the way back"
        if "update_id" in event:  # the driver's word that the order went out
            return "order sent to the robot"
        return "was given its trip to the customer"
    if kind == "node_reached":
        node = str(event.get("node_id") or event.get("node") or "")
        if node.endswith("-out0"):  # the trip's first node is the station itself
            return "set off from the station"
        where = {"out": "on the way to the customer", "back": "on the way back"}
        return f"{where.get(_node_leg(node) or '', 'passed a point')}{_at(event)}"
    if kind == "drop_off":
        return {
            "WAITING": "will drop the package off at the door",
            "INITIALIZING": "dropping the package off",
            "RUNNING": "dropping the package off",
            "PAUSED": "drop-off paused",
            "FINISHED": "dropped the package off",
            "FAILED": f"drop-off failed: {event.get('result') or 'no reason given'}",
        }.get(status, f"drop-off {status.lower()}")
    if kind == "return_released":
        return "driving back to the station"
    if kind == "return_home":
        return "turned back to the station (trip aborted)"
    if kind == "returned":
        energy = event.get("energy_used_wh")
        used = f", {energy:.0f} Wh used" if isinstance(energy, int | float) else ""
        return f"back at the station{used}"
    if kind == "cancel":
        return f"cancelling its order: {status.lower() or 'sent'}"
    if kind == "availability":
        available = event.get("availability")
        reason = f": {event['reason']}" if event.get("reason") else ""
        return "available" if available == "available" else f"{str(available).replace('_', ' ')}{reason}"
    if kind == "robot_error":
        what = event.get("error_type") or "error"
        return f"reports an error: {what}" + (f": {event['description']}" if event.get("description") else "")
    if kind in ("refused", "unreachable"):
        why = event.get("reason") or event.get("availability") or ""
        return f"{'refused the trip' if kind == 'refused' else 'unreachable'}" + (f": {why}" if why else "")
    if kind == "timeout":
        return f"did not finish its trip in time ({event.get('limit_s', 0):.0f} s)"
    if kind == "order_adopted":
        return "followed again after a controller change"
    return None


def _vehicle_words(event: dict[str, Any]) -> str:
    who = event.get("vehicle_id") or event.get("vehicle") or "?"
    name = event.get("event")
    if name == "phase":
        phase = str(event.get("phase", ""))
        if phase == "done":
            return f"{who} {_done_words(event)}"
        words = _DRONE_PHASES.get(phase, (phase.replace("_", " "), ""))[0]
        return f"{who} {words}"
    if name == "released":
        return f"{who} released the package{_at(event)}"
    if name == "release_inferred":
        return f"{who} released the package (read from its mission's progress)"
    if name == "airspace":
        return f"{who} {_airspace_words(event)}"
    if name == "reattached":  # the link came back mid-flight: where the drone stands now
        return (
            f"{who} heard again after {event.get('down_s') or 0:.0f} s: {event.get('mode') or '?'}, "
            f"waypoint {event.get('mission_current')}{_at(event)}"
        )
    if name in _DRONE_EVENT_WORDS:
        return f"{who} {_DRONE_EVENT_WORDS[name](event)}"
    if event.get("state") == "unavailable":
        return f"{who} unavailable: {event.get('reason')}"
    if event.get("kind"):  # a robot mission's note: order_sent, node_reached, returned, ...
        words = _robot_words(event)
        if words is not None:
            return f"{who} {words}"
        rest = _extras(event, ("kind",))
        return f"{who} {str(event['kind']).replace('_', ' ')}" + (f" ({rest})" if rest else "")
    rest = _extras(event, ("event",))
    return f"{who} {name or ''} {rest}".replace("  ", " ").strip()


def phase_of(event: dict[str, Any]) -> str | None:
    """What a vehicle on a mission is doing now, as a vehicle event tells it (the dashboard's phase column);
    None when the event does not change it (a robot's drop-off accepted on the way out, an order update).
    Short, so the missions table fits 80 columns: "out" is to the customer, "back" to the station."""
    name, kind = event.get("event"), event.get("kind")
    if name == "phase":
        phase = str(event.get("phase", ""))
        if phase == "done":
            return "landed"
        return _DRONE_PHASES.get(phase, ("", phase.replace("_", " ")))[1]
    if name in ("released", "release_inferred"):
        return "flying back"
    if name == "airspace":
        state = event.get("state")
        if state == "holding":
            return "cleared to land" if event.get("cleared") else "holding to land"
        return {
            "cleared": "landing",
            "to_rally": "to a rally point",
            "waiting_launch": "waiting to launch",
        }.get(str(state))
    if kind == "order_sent":
        return "driving out" if (event.get("update_id") or 0) < 1 else None
    if kind == "node_reached":
        leg = _node_leg(event.get("node_id") or event.get("node"))
        return {"out": "driving out", "back": "driving back"}.get(leg or "")
    if kind == "drop_off":
        status = str(event.get("status") or "").upper()
        return {"INITIALIZING": "dropping off", "RUNNING": "dropping off", "PAUSED": "drop-off paused",
                "FINISHED": "driving back", "FAILED": "drop-off failed"}.get(status)  # fmt: skip
    return (
        {
            "return_released": "driving back",
            "return_home": "aborted, returning",
            "returned": "back at station",
            "cancel": "cancelling",
            "robot_error": "error",
            "timeout": "timed out",
            "unreachable": "unreachable",
        }.get(str(kind))
        if kind
        else None
    )


# --- following a station -----------------------------------------------------------------------------------


async def follow(
    url: str,
    token: str | None,
    *,
    console: Console,
    since: int | None = None,
    count: int = 0,
    board: Dashboard | None = None,
    verbose: bool = False,
    eta_clock: str = WALL,
) -> None:
    """Show the dashboard until `count` new events were shown (0: until cancelled or Ctrl-C).

    The first connection's failure raises `Unreachable` and a refused token `ApiError`; later losses are
    shown on the screen and retried with backoff. With `count`, it also waits for the first telemetry frame,
    so the last screen has the vehicles on it. Pass a `board` to look at what it shows from elsewhere.
    `verbose` shows every field of the events; `eta_clock` names the clock of the station's ETAs.
    """
    board = board if board is not None else Dashboard()
    board.verbose, board.eta_clock = verbose, eta_clock
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=10) as http:
        await _load(http, board, {"missions", "queue"})
        first = board.last_seq = since if since is not None else board.station_seq
        # Without `since`: the station's recent history (500 events: the phase of every mission under way, the
        # events panel). `seq` is not dense (see controller.service.events): no "last N" by arithmetic.
        replay_from = since if since is not None else 0
        stale: set[str] = set()
        with Live(board.render(console), console=console, auto_refresh=False, redirect_stdout=False) as live:
            redraw = asyncio.create_task(_redraw(live, board, http, stale))
            try:
                counted = 0
                # Closed here, not whenever the collector finds it: its socket (and the socket's keepalive
                # task) ends before `follow` returns, not after the event loop is gone.
                async with contextlib.aclosing(_channel(url, token, board, replay_from)) as channel:
                    async for message in channel:
                        stale |= board.apply(message)
                        counted += message.get("seq", 0) > first
                        if count and counted >= count and board.telemetry_seen:
                            return
            finally:
                redraw.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await redraw
                live.update(board.render(console), refresh=True)


async def _channel(
    url: str, token: str | None, board: Dashboard, since: int
) -> AsyncIterator[dict[str, Any]]:
    """The live channel's messages, reconnecting after a loss (resuming after `board.last_seq`).

    Each reconnection also marks the missions and the queue stale: they may have changed meanwhile.
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    base = url.rstrip("/").replace("http", "ws", 1) + "/v1/console/live?"
    delay = 0.5
    connected_once = False
    while True:
        query = {"since": since} | ({"token": token} if token else {})
        problem: object = "the station closed it"  # a clean close (a station stopping) ends the loop quietly
        try:
            async with connect(base + urlencode(query), open_timeout=10) as socket:
                connected_once, board.trouble, delay = True, None, 0.5
                async for text in socket:
                    yield json.loads(text)
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code in (4401, 4403):
                raise ApiError(exc.rcvd.code - 4000, "token", exc.rcvd.reason, []) from None
            problem = exc
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            if not connected_once:
                raise Unreachable(f"cannot open the live channel at {url}: {exc}") from exc
            problem = exc
        board.trouble = f"connection lost ({problem}); retrying in {delay:.1f} s"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
        since = board.last_seq  # resume after the last event shown: none is missed
        yield {"type": "reconnected"}


async def _redraw(live: Live, board: Dashboard, http: httpx.AsyncClient, stale: set[str]) -> None:
    """Redraw at most every REDRAW_S; re-read what events made stale at most every RELOAD_S."""
    loaded = time.monotonic()
    while True:
        await asyncio.sleep(REDRAW_S)
        if stale and time.monotonic() - loaded >= RELOAD_S:
            wanted = set(stale)
            stale.clear()
            loaded = time.monotonic()
            with contextlib.suppress(httpx.HTTPError, Unreachable, ApiError):
                await _load(http, board, wanted)
        live.update(board.render(live.console), refresh=True)


async def _load(http: httpx.AsyncClient, board: Dashboard, what: set[str]) -> None:
    """Re-read the mission list and/or the queue counts."""
    try:
        if "missions" in what:
            board.load_map(answer_of(await http.get("/v1/map")))
        if "queue" in what:
            board.load_fleet(answer_of(await http.get("/v1/fleet")))
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach the station API at {http.base_url}: {exc}") from exc
