"""The web console's event list in plain words, as `lastmile watch` says them (issue 20, part 2): a robot's
trip reads forwards, positions to 5 decimals, no order ids or protocol flags, times with their zone; the
event's every field stays in the line's tooltip. Real headless Chromium runs the console's own module."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STATIC = Path(__file__).resolve().parents[2] / "controller" / "web" / "static"
NOTE = {"type": "vehicle", "vehicle_id": "r2", "mission_id": "7e49ca29d1c04b5e"}
ORDER = "01a2528f860171508755032c62efe9a6~394bb326"
TRIP = [
    {"kind": "order_sent", "order_id": ORDER, "nodes": 3, "released_until": 1},
    {"kind": "order_sent", "order_id": ORDER, "update_id": 0, "resend": False, "full": False},
    {"kind": "node_reached", "node_id": "01a2528f860171508755032c62efe9a6-out0",
     "position": [33.44, -112.256]},
    {"kind": "drop_off", "status": "WAITING"},
    {"kind": "node_reached", "node_id": "01a2528f860171508755032c62efe9a6-out1",
     "position": [33.438526510362905, -112.260758067563]},
    {"kind": "drop_off", "status": "RUNNING"},
    {"kind": "drop_off", "status": "FINISHED"},
    {"kind": "return_released", "order_id": ORDER},
    {"kind": "returned", "position": [33.44, -112.256], "energy_used_wh": 18.9},
]  # fmt: skip


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """The console's static files over HTTP (a module import needs an origin), on a free port."""
    handler = functools.partial(_Quiet, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the standard library's names
        pass


def test_the_console_tells_a_robots_trip_in_plain_words(browser: Any, static_url: str) -> None:
    context = browser.new_context(timezone_id="UTC", locale="en-GB")  # the browser's zone, named; 24 h
    try:
        page = context.new_page()
        page.goto(static_url + "/console.css")  # any page of the console's origin
        events = [
            {"seq": i, "at": f"2026-12-07T22:32:{i:02d}+00:00", **NOTE, **e} for i, e in enumerate(TRIP, 1)
        ]
        shown = page.evaluate(
            """async (events) => {
                 const { addEvent } = await import("/panels.js");
                 const list = document.createElement("ul");
                 for (const e of events) addEvent(list, e, "");
                 return [...list.children].reverse().map((li) => [li.textContent, li.title]);
               }""",
            events,
        )
    finally:
        context.close()
    texts = [text for text, _ in shown]
    assert texts == [
        "22:32 UTC vehicle r2 was given its trip to the customer",
        "22:32 UTC vehicle r2 order sent to the robot",
        "22:32 UTC vehicle r2 set off from the station",
        "22:32 UTC vehicle r2 will drop the package off at the door",
        "22:32 UTC vehicle r2 on the way to the customer at 33.43853, -112.26076",
        "22:32 UTC vehicle r2 dropping the package off",
        "22:32 UTC vehicle r2 dropped the package off",
        "22:32 UTC vehicle r2 driving back to the station",
        "22:32 UTC vehicle r2 back at the station",
    ]
    assert not any(ORDER[:8] in t or "resend" in t for t in texts)  # no internals in the words...
    details = json.loads(shown[1][1])
    assert details["order_id"] == ORDER and details["resend"] is False  # ...but all in the tooltip
