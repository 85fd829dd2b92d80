"""Proof of delivery in the console, in real headless Chromium: a simulated drone delivers a package through
the station, the Delivered panel lists it, and its detail shows where and when the drone released it (the
API's proof, as the drone reported it), and the photo an integration attached afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from controller.simstation import SimStation
from tests.web.conftest import OPERATOR, VIEWER, Console, at, station_config
from tests.web.serving import ConsoleServer

pytestmark = pytest.mark.slow


def test_the_console_shows_a_delivery_and_its_proof(
    open_console: Callable[..., Console], shots: Path
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lastmile-console-proof-"))
    config = station_config(
        tmp, launch="auto", fleet=[{"id": "d1", "kind": "drone"}, {"id": "v1", "kind": "van"}]
    )

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[SimStation]:
        async with SimStation(config, store_url=f"sqlite:///{tmp / 's.sqlite3'}", speedup=40) as station:
            yield station

    try:
        with (
            ConsoleServer(factory) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=30
            ) as op,
        ):
            console = open_console(server.url, VIEWER)  # reading the proof needs no more than a viewer
            page = console.page
            lat, lon = at(800, -600)
            r = op.post("/v1/packages", json={"key": "proof-1", "weight": 1.0, "weight_unit": "kg",
                                              "dest_lat": lat, "dest_lon": lon})  # fmt: skip
            assert r.status_code == 201, r.text
            pid = r.json()["id"]

            # Delivered: the panel lists it as the event comes in (no reload), confirmed by the drone.
            row = page.locator(f"#delivered tr[data-package='{pid}']")
            row.wait_for(timeout=60_000)
            assert row.locator("td").nth(0).inner_text() == "proof-1"
            assert row.locator("td").nth(1).inner_text() == "d1"
            assert row.locator("td").nth(3).inner_text() == "the vehicle"

            # Its detail: what the API says, in words and units a person reads.
            proof = op.get(f"/v1/packages/{pid}").json()["proof"]
            row.click()
            dialog = page.locator("#package")
            dialog.wait_for()
            assert page.locator("#package-title").inner_text() == "Package proof-1"
            shown = {
                k: page.locator(f"#package-proof [data-proof='{k}']").inner_text()
                for k in ("at", "position", "distance", "altitude", "confirmed_by", "vehicle", "photo")
            }
            at_ = proof["at"]
            assert shown["at"] == f"{at_[:10]} {at_[11:19]} UTC"
            assert shown["position"] == f"{proof['lat']:.6f}, {proof['lon']:.6f}"
            assert shown["distance"].startswith(f"{proof['distance_to_destination_m']:.1f} m (")
            assert proof["distance_to_destination_m"] < 5.0
            assert shown["altitude"].startswith(f"{proof['alt_amsl_m']:.1f} m (")
            assert (
                f"{proof['alt_agl_m']:.1f} m" in shown["altitude"]
                and "above the station" in shown["altitude"]
            )
            assert shown["confirmed_by"] == f"the vehicle: {proof['event']}"
            assert proof["event"].startswith("Gripper load releas")
            assert shown["vehicle"] == "d1 (drone, gripper)" and shown["photo"] == "none attached"
            page.screenshot(path=str(shots / "proof-1-detail.png"))
            page.click("#package button[value='close']")

            # A vehicle integration attaches the photo: the panel says so, the detail links it.
            url = "https://photos.example/drops/proof-1.jpg?sig=abc"
            assert op.post(f"/v1/packages/{pid}/proof/photo", json={"photo_url": url}).status_code == 200
            page.click("#map-tools [data-zoom='fit']")  # re-reads the station (a photo is not a state change)
            page.wait_for_function(
                f"() => document.querySelector(\"#delivered tr[data-package='{pid}'] td:nth-child(4)\")"
                ".textContent === 'the vehicle + photo'"
            )
            row.click()
            link = page.locator("#package-proof [data-proof='photo'] a")
            assert link.get_attribute("href") == url and link.get_attribute("rel") == "noopener noreferrer"
            page.screenshot(path=str(shots / "proof-2-photo.png"))
            assert console.errors == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
