"""`lastmile watch`: the live dashboard, its words for events, and its recovery from a lost connection."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from controller import cli_ops
from controller.api.server import ApiThread
from controller.client import LastmileClient
from controller.watch import Dashboard, _channel, clock, describe, event_line, follow, position_text
from tests.api.helpers import ROLE_TOKEN, package, station_config
from tests.relays import TcpRelay

app = typer.Typer()
cli_ops.register(app)
runner = CliRunner()


def screen(board: Dashboard, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(board.render())
    return console.export_text()


def flying_station() -> Dashboard:
    """A station as the live channel and the map describe it: one drone out on a 2 km route, a robot
    offline, a van (no telemetry), the fleet grounded meanwhile."""
    board = Dashboard()
    board.load_map({
        "station": {"name": "Tolleson"},
        "grounded": None,
        "missions": [{
            "id": "6f1c0e5d2a7b4c1d", "package_id": "01a245b8ada8729f", "package_key": "ord-10023",
            "vehicle_id": "d1", "kind": "drone", "state": "en_route",
            "route": [[0, 0], [1414.2, 1414.2]], "track": [[0, 0], [353.6, 353.6], [707.1, 707.1]],
        }],
    })  # fmt: skip
    board.load_fleet({"station": "Tolleson", "grounded": False, "queue": {"received": 2, "en_route": 1,
                      "delivered": 41, "van": 12}, "last_event": 90})  # fmt: skip
    board.apply({"type": "telemetry", "vehicles": [
        {"id": "d1", "kind": "drone", "online": True, "x": 707.1, "y": 707.1, "c": 0.25, "alt": 60.0,
         "spd": 12.0, "mode": "AUTO", "age": 0.2, "mission": "6f1c0e5d2a7b4c1d", "err": []},
        {"id": "r1", "kind": "robot", "online": False, "x": None, "y": None, "c": None, "alt": None,
         "spd": None, "mode": None, "age": None, "mission": None, "err": []},
        {"id": "v1", "kind": "van", "online": False, "x": None, "y": None, "c": None, "alt": None,
         "spd": None, "mode": None, "age": None, "mission": None, "err": []},
    ]})  # fmt: skip
    for seq, event in enumerate(
        [
            {"type": "package", "key": "k-9", "state": "van", "reasons": ["overweight"],
             "reason": "at intake"},
            {"type": "vehicle", "vehicle_id": "d1", "mission_id": "6f1c0e5d2a7b4c1d", "event": "phase",
             "phase": "flying"},
            {"type": "vehicle", "vehicle_id": "d1", "event": "ModeChanged", "old": "GUIDED", "new": "AUTO"},
            {"type": "mission", "mission_id": "6f1c0e5d2a7b4c1d", "package_id": "01a245b8ada8729f",
             "vehicle_id": "d1", "state": "en_route"},
            {"type": "fleet", "state": "grounded", "reason": "gusts over 12 m/s"},
        ],
        start=91,
    ):  # fmt: skip
        board.apply({"seq": seq, "at": f"2026-12-05T15:02:{seq - 80:02d}+00:00", **event})
    return board


def test_the_dashboard_shows_vehicles_missions_queue_and_events_in_80_columns() -> None:
    text = screen(flying_station())
    assert "…" not in text, text  # nothing cut off at 80 columns
    assert "FLEET GROUNDED: gusts over 12 m/s" in text
    d1 = next(line for line in text.splitlines() if line.lstrip().startswith("d1 "))
    assert "25 %" in d1 and "1.0 km/0.6 mi NE" in d1 and "60 m" in d1 and "AUTO" in d1
    assert "offline" in next(line for line in text.splitlines() if line.lstrip().startswith("r1 "))
    assert not any(line.lstrip().startswith("v1 ") for line in text.splitlines())  # vans send no telemetry
    mission = next(line for line in text.splitlines() if "6f1c0e5d" in line)
    assert "ord-10023" in mission and "flying out" in mission
    assert "25 %" in mission  # 1 km of a 4 km round trip
    assert "package k-9 van: overweight (at intake)" in text
    assert "d1 flight mode GUIDED → AUTO" in text
    assert "mission 6f1c0e5d en route: d1 with package ord-10023" in text  # named by its key, from the map
    assert "recent events (wall clock)" in text and "15:02:11 UTC" in text  # every time says its clock
    assert "received 2 · en route 1 · delivered 41 · van 12" in text


def test_a_robots_phase_says_what_it_is_doing() -> None:
    """A robot trip's notes in the order a real one sends them (controller.missions.robot): the phase reads
    forwards, out, at the door, back (issue 20: "drop off waiting" on the way out read backwards)."""
    board = Dashboard()
    note = {"type": "vehicle", "vehicle_id": "r1", "mission_id": "m-r1"}
    order, out, back = "01a2528f8601~394bb326", "driving out", "driving back"
    trip = [
        ({"kind": "order_sent", "order_id": order, "nodes": 3, "released_until": 1}, out),
        ({"kind": "order_sent", "order_id": order, "update_id": 0, "resend": False}, out),
        ({"kind": "node_reached", "node_id": "01a2528f8601-out0", "position": [33.44, -112.256]}, out),
        ({"kind": "drop_off", "status": "WAITING"}, out),  # accepted, still ahead
        ({"kind": "node_reached", "node_id": "01a2528f8601-out1", "position": [33.4385265103629, -112.26070]},
         out),
        ({"kind": "drop_off", "status": "RUNNING"}, "dropping off"),
        ({"kind": "drop_off", "status": "FINISHED"}, back),
        ({"kind": "return_released", "order_id": order}, back),
        ({"kind": "order_sent", "order_id": order, "update_id": 1, "resend": False}, back),
        ({"kind": "node_reached", "node_id": "01a2528f8601-back2", "position": [33.44, -112.256]}, back),
        ({"kind": "returned", "position": [33.44, -112.256], "energy_used_wh": 18.9}, "back at station"),
    ]  # fmt: skip
    for seq, (event, phase) in enumerate(trip, start=1):
        board.apply({"seq": seq, **note, **event})
        assert board.phases["m-r1"] == phase, event
    lines = [describe({**note, **event}) for event, _ in trip]
    assert lines[:2] == ["r1 was given its trip to the customer", "r1 order sent to the robot"]
    assert lines[2] == "r1 set off from the station"
    assert lines[4] == "r1 on the way to the customer at 33.43853, -112.26070"  # 5 decimals: about 1 m
    assert lines[5:8] == [
        "r1 dropping the package off",
        "r1 dropped the package off",
        "r1 driving back to the station",
    ]
    assert lines[8] == "r1 was sent the way back"
    assert lines[10] == "r1 back at the station, 19 Wh used"
    text = " ".join(lines)
    assert order not in text and "resend" not in text and "01a2528f8601" not in text  # no internals
    verbose = describe({**note, **trip[1][0]}, verbose=True)  # ...unless asked for
    assert order in verbose and "resend=False" in verbose and "mission_id=m-r1" in verbose


def test_a_drones_phase_says_what_it_is_doing() -> None:
    board = Dashboard()
    note = {"type": "vehicle", "vehicle_id": "d5", "mission_id": "m-d5"}
    flight = [
        ({"event": "phase", "phase": "safety_params"}, "preparing"),
        ({"event": "phase", "phase": "mission_upload", "items": 11}, "preparing"),
        ({"event": "phase", "phase": "waiting_launch"}, "waiting to launch"),
        ({"event": "phase", "phase": "arming"}, "arming"),
        ({"event": "phase", "phase": "flying"}, "flying out"),
        ({"event": "ModeChanged", "old": "GUIDED", "new": "AUTO"}, "flying out"),
        ({"event": "released", "position": [33.4492, -112.2049]}, "flying back"),
        ({"event": "airspace", "state": "holding", "cleared": False, "landing_pad": "P1"}, "holding to land"),
        ({"event": "airspace", "state": "holding", "cleared": True, "landing_pad": "P1"}, "cleared to land"),
        ({"event": "airspace", "state": "cleared", "landing_pad": "P1"}, "landing"),
        ({"event": "phase", "phase": "done", "delivered": True, "returned": True}, "landed"),
    ]  # fmt: skip
    for seq, (event, phase) in enumerate(flight, start=1):
        board.apply({"seq": seq, **note, **event})
        assert board.phases["m-d5"] == phase, event
    assert describe({**note, **flight[1][0]}) == "d5 loading its mission"  # the items only with --verbose


def test_the_widest_vehicle_row_fits_80_columns() -> None:
    """A drone far out and high, in a long mode name: the demo's screen cut "115 m" and "STABILIZE"."""
    board = Dashboard()
    board.apply({"type": "telemetry", "vehicles": [
        {"id": "d1", "kind": "drone", "online": True, "x": 7400.0, "y": 7400.0, "c": 1.0, "alt": 115.0,
         "spd": 22.0, "mode": "STABILIZE", "age": 0.2, "mission": None, "err": []},
        {"id": "r1", "kind": "robot", "online": True, "x": 0.0, "y": 900.0, "c": 0.96, "alt": None,
         "spd": 1.7,
         "mode": "driving", "age": 0.2, "mission": None, "err": []},
    ]})  # fmt: skip
    text = screen(board)
    assert "…" not in text, text
    d1 = next(line for line in text.splitlines() if line.startswith("d1 "))
    assert "10.5 km/6.5 mi NE" in d1 and "115 m" in d1 and "22 m/s" in d1 and "STABILIZE" in d1
    assert "1.7 m/s" in next(line for line in text.splitlines() if line.startswith("r1 "))


def test_the_longest_phases_still_fit_80_columns() -> None:
    board = Dashboard()
    missions = [
        {"id": f"{i}f1c0e5d2a7b4c1d", "package_id": f"01a245b8ada8729{i}", "package_key": f"demo-5050-002{i}",
         "vehicle_id": v, "kind": kind, "state": "launching", "route": [[0, 0], [500, 500]], "track": []}
        for i, (v, kind) in enumerate([("d1", "drone"), ("r1", "robot"), ("d2", "drone"), ("r2", "robot")])
    ]  # fmt: skip
    board.load_map({"missions": missions})
    last = [
        {"event": "airspace", "state": "waiting_launch", "pad": "P1"}, {"kind": "return_home"},
        {"event": "airspace", "state": "holding", "cleared": False}, {"kind": "drop_off", "status": "FAILED"},
    ]  # fmt: skip
    for seq, (m, event) in enumerate(zip(missions, last, strict=True), start=1):
        board.apply(
            {"seq": seq, "type": "vehicle", "vehicle_id": m["vehicle_id"], "mission_id": m["id"], **event}
        )
    text = screen(board)
    table = text[text.index("missions") : text.index("recent events")]
    assert "…" not in table, table
    for phase in ("waiting to launch", "aborted, returning", "holding to land", "drop-off failed"):
        assert phase in table, table


def test_progress_follows_the_telemetry() -> None:
    board = flying_station()
    mission = board.missions["6f1c0e5d2a7b4c1d"]
    for x in (1060.7, 1414.2, 1416.0):  # the last step is under the track's 3 m: not counted
        board.apply({"type": "telemetry", "vehicles": [{"id": "d1", "kind": "drone", "x": x, "y": x,
                                                        "mission": mission.id, "online": True}]})  # fmt: skip
    assert mission.covered_m == pytest.approx(2000.0, abs=0.1)
    assert mission.progress == pytest.approx(0.5, abs=1e-4)
    board.load_map({"missions": []})  # finished: it leaves the screen
    assert "no mission under way" in screen(board)


@pytest.mark.parametrize(
    ("x", "y", "text"),
    [
        (None, None, "-"),
        (10.0, -10.0, "at station"),
        (0.0, 800.0, "800 m N"),
        (-3000.0, -3000.0, "4.2 km/2.6 mi SW"),
    ],
)
def test_positions_in_words(x: float | None, y: float | None, text: str) -> None:
    assert position_text(x, y) == text


def test_events_in_words() -> None:
    eta = "2026-12-05T15:14:00+00:00"
    assigned = {"type": "package", "key": "k1", "state": "assigned", "vehicle_id": "d2", "mode": "drone"}
    assert describe({**assigned, "eta": eta, "reason": "assigned"}) == (
        "package k1 assigned by drone d2, ETA wall 15:14 UTC"
    )
    assert describe({**assigned, "eta": eta}, eta_clock="sim").endswith("ETA sim 15:14 UTC")  # the demo
    launching = {"type": "package", "key": "k2", "state": "launching", "vehicle_id": "d3", "mode": "drone"}
    assert describe({**launching, "reason": "launching d3"}) == "package k2 launching by drone d3"
    failed = {"type": "package", "key": "k3", "state": "received", "reason": "flight failed: low battery"}
    assert describe(failed) == "package k3 received (flight failed: low battery)"
    assert describe({"type": "fleet", "state": "released"}) == "fleet released"
    assert describe({"type": "vehicle", "vehicle_id": "d1", "event": "LinkLost", "silent_s": 3.2}) == (
        "d1 link lost (3 s silent)"
    )
    released = {"type": "vehicle", "vehicle_id": "d5", "event": "released", "text": "Gripper load releasing",
                "position": [33.4492015, -112.2048593]}  # fmt: skip
    assert describe(released) == "d5 released the package at 33.44920, -112.20486"
    done = {"type": "vehicle", "vehicle_id": "d5", "event": "phase", "phase": "done", "delivered": True,
            "returned": True, "energy_used_wh": 109.2, "predicted_energy_wh": 167.1}  # fmt: skip
    assert describe(done) == "d5 landed: package delivered, back at the station, 109 Wh used"
    holding = {"type": "vehicle", "vehicle_id": "d3", "event": "airspace", "state": "holding",
               "cleared": False, "landing_pad": "P3"}  # fmt: skip
    assert describe(holding) == "d3 holding for a landing slot on pad P3"
    reattached = {"type": "vehicle", "vehicle_id": "d5", "event": "reattached", "down_s": 0.3, "mode": "AUTO",
                  "armed": True, "mission_current": 6, "position": [33.4473012, -112.2155099]}  # fmt: skip
    assert describe(reattached) == "d5 heard again after 0 s: AUTO, waypoint 6 at 33.44730, -112.21551"
    assert describe({"type": "mystery", "x": 1.25}) == "mystery x=1.2"


def test_times_say_their_zone() -> None:
    assert clock("2026-12-05T08:02:11-07:00") == "15:02:11 UTC"  # the station's UTC, whatever this machine's
    assert clock("2026-12-05T15:02:11+00:00", seconds=False) == "15:02 UTC"
    assert clock(None) == "--:--:--"
    line = event_line({"seq": 7, "at": "2026-12-05T15:02:11+00:00", "type": "fleet", "state": "released"})
    assert line == "     7 wall 15:02:11 UTC fleet released"


def lastmile(api: ApiThread, *args: str, role: str = "operator") -> tuple[int, str]:
    result = runner.invoke(
        app, [*args, "--url", api.url], env={"LASTMILE_TOKEN": ROLE_TOKEN[role], "COLUMNS": "120"}
    )
    return result.exit_code, result.output


def submit_soon(api: ApiThread, key: str) -> threading.Event:
    """POST a package from another thread while the command under test waits for it."""
    done = threading.Event()

    def post() -> None:
        headers = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
        httpx.post(api.url + "/v1/packages", json=package(key, weight=40), headers=headers, timeout=30)
        done.set()

    threading.Thread(target=post).start()
    return done


def test_watch_dashboard_against_a_running_station(api: ApiThread) -> None:
    since = httpx.get(api.url + "/healthz").json()["last_event"]
    submitted = submit_soon(api, "watch-dash")
    code, out = lastmile(api, "watch", "--dashboard", "--since", str(since), "--count", "2", role="viewer")
    assert submitted.wait(30)
    assert code == 0, out
    assert "test station" in out and "0/3 vehicles online" in out
    for vehicle in ("d1", "d2", "r1"):
        assert any(line.lstrip().startswith(f"{vehicle} ") and "offline" in line for line in out.splitlines())
    assert "package watch-dash received" in out
    assert "package watch-dash van: overweight" in out


def test_watch_events_prints_a_line_per_event_in_words(api: ApiThread) -> None:
    since = httpx.get(api.url + "/healthz").json()["last_event"]
    submitted = submit_soon(api, "watch-lines")
    code, out = lastmile(api, "watch", "--events", "--since", str(since), "--count", "2")
    assert submitted.wait(30)
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 2
    seqs = [int(line.split()[0]) for line in lines]  # the bus's sequence: growing, not dense
    assert since < seqs[0] < seqs[1] and "package watch-lines received" in lines[0]
    assert lines[1].endswith("package watch-lines van: overweight")


def test_watch_events_verbose_adds_every_field(api: ApiThread) -> None:
    since = httpx.get(api.url + "/healthz").json()["last_event"]
    submitted = submit_soon(api, "watch-verbose")
    code, out = lastmile(api, "watch", "--events", "--verbose", "--since", str(since), "--count", "2")
    assert submitted.wait(30)
    assert code == 0, out
    received = out.strip().splitlines()[0]
    assert re.search(r" wall \d\d:\d\d:\d\d UTC package watch-verbose received \[.*package_id=\w+", received)


class _SimClock:
    """A simulated day's clock, as `lastmile demo` gives the service (`controller.demo.ScaledClock`)."""

    speedup = 40.0

    def __call__(self) -> datetime:
        return datetime.now(UTC)


def test_the_station_says_which_clock_its_etas_are_on_and_watch_labels_them_so(api: ApiThread) -> None:
    headers = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
    fleet = httpx.get(api.url + "/v1/fleet", headers=headers).json()
    assert (fleet["clock"], fleet["clock_speedup"]) == ("wall", 1.0)
    api.service.clock = _SimClock()  # a simulated day: `watch` pointed at it must not call its ETAs wall
    fleet = httpx.get(api.url + "/v1/fleet", headers=headers).json()
    assert (fleet["clock"], fleet["clock_speedup"]) == ("sim", 40.0)
    board = Dashboard()
    board.load_fleet(fleet)
    eta = {"type": "package", "key": "k", "state": "assigned", "vehicle_id": "d1", "mode": "drone",
           "eta": "2026-12-05T15:14:00+00:00"}  # fmt: skip
    assert describe(eta, eta_clock=board.eta_clock).endswith("ETA sim 15:14 UTC")
    with LastmileClient(api.url, ROLE_TOKEN["viewer"]) as client:  # what `watch --events` asks first
        assert cli_ops._eta_clock(client) == "sim"


def test_watch_dashboard_refuses_a_dispatcher_token(api: ApiThread) -> None:
    code, out = lastmile(api, "watch", "--dashboard", "--count", "1", role="dispatcher")
    assert code == 2 and "403" in out


def test_watch_dashboard_without_a_server_exits_1() -> None:
    result = runner.invoke(
        app, ["watch", "--dashboard", "--url", "http://127.0.0.1:9"], env={"LASTMILE_TOKEN": "x"}
    )
    assert result.exit_code == 1
    assert "cannot reach" in result.output


async def until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Until `condition()` holds: the dashboard has no event to wait on, so it is looked at every 20 ms."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_the_dashboard_rides_out_a_lost_connection_and_misses_no_event(api: ApiThread) -> None:
    port = int(api.url.rsplit(":", 1)[1])
    relay = TcpRelay(port)
    await relay.start()
    board = Dashboard()
    console = Console(file=io.StringIO(), width=100)
    url = f"http://127.0.0.1:{relay.port}"
    watching = asyncio.create_task(follow(url, ROLE_TOKEN["viewer"], console=console, board=board))
    headers = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
    try:
        await until(lambda: board.telemetry_seen)
        relay.cut()
        await until(lambda: board.trouble is not None)
        assert "connection lost" in (board.trouble or "")
        async with httpx.AsyncClient(base_url=api.url, headers=headers) as direct:  # around the relay
            r = await direct.post("/v1/packages", json=package("while-away", weight=40))
            assert r.status_code == 201
        relay.restore()
        await until(lambda: any(e.get("key") == "while-away" for e in board.events))
        assert board.trouble is None
        await until(lambda: board.queue.get("van") == 1)
        assert watching.done() is False
    finally:
        watching.cancel()
        relay.close()
        with pytest.raises(asyncio.CancelledError):
            await watching


def test_a_long_watch_keeps_what_it_remembers_bounded() -> None:
    board = Dashboard()
    for i in range(25_000):  # a few busy days of package events
        board.apply({"type": "package", "seq": i + 1, "package_id": f"p{i}", "key": f"k{i}", "state": "van"})
    assert len(board.keys) <= 10_000
    assert board.keys["p24999"] == "k24999"  # the newest are kept
    assert len(board.events) == 10


def test_on_a_short_terminal_the_newest_events_fit_below_the_rest() -> None:
    board = flying_station()
    terminal = Console(file=io.StringIO(), width=80, height=18, force_terminal=True, color_system=None)
    lines = terminal.render_lines(board.render(terminal), terminal.options, pad=False)
    assert len(lines) < 18  # nothing for the live display to cut off
    text = "\n".join("".join(segment.text for segment in line) for line in lines)
    assert "fleet grounded: gusts over 12 m/s" in text  # the newest event
    assert "package k-9 van" not in text  # the oldest made way
    assert "package k-9 van" in screen(board)  # not a terminal: every event kept is printed


async def test_a_station_that_stops_shows_as_lost_and_the_watch_carries_on(tmp_path: Path) -> None:
    api = ApiThread(station_config(), f"sqlite:///{tmp_path / 'store.sqlite3'}").__enter__()
    board = Dashboard()
    console = Console(file=io.StringIO(), width=100)
    watching = asyncio.create_task(follow(api.url, ROLE_TOKEN["viewer"], console=console, board=board))
    try:
        await until(lambda: board.telemetry_seen)
        await asyncio.to_thread(api.__exit__, None, None, None)  # a graceful stop closes the socket cleanly
        await until(lambda: board.trouble is not None)
        assert "connection lost" in (board.trouble or "")
        assert not watching.done()  # still trying, as it would until the station is back
    finally:
        watching.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watching


async def test_a_channel_closed_cleanly_is_reconnected_too() -> None:
    """A peer that closes with 1000 ends the socket's iteration without an error: still a loss to retry."""
    from websockets.asyncio.server import ServerConnection, serve

    opened = 0

    async def station(socket: ServerConnection) -> None:
        nonlocal opened
        opened += 1
        await socket.send(json.dumps({"type": "hello", "station": "clean close", "last_seq": 0}))
        await socket.close(1000)

    async with serve(station, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        board = Dashboard()
        messages = _channel(f"http://127.0.0.1:{port}", None, board, 0)
        assert (await anext(messages))["type"] == "hello"
        assert await anext(messages) == {"type": "reconnected"}
        assert "connection lost (the station closed it)" in (board.trouble or "")
        assert (await anext(messages))["type"] == "hello" and opened == 2
        await messages.aclose()
