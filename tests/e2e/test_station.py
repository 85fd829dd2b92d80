"""A whole simulated station behind its HTTP API: a mixed batch ends up with the right carriers.

Simulated drones (MAVLink over TCP), simulated robots (VDA 5050 through a real mosquitto), the real
drivers, the station service and the API server, all on one event loop; the test speaks HTTP only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.api.server import serve
from controller.simstation import SimStation
from controller.station import StationConfig
from controller.tokens import hash_tokens

STATION = (33.4400, -112.2560)
TOKEN = "op-token"
DONE = {"delivered", "van"}


def at(east_m: float, north_m: float) -> tuple[float, float]:
    lat = STATION[0] + north_m / 111_320.0
    lon = STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0])))
    return lat, lon


def station_config(tmp_path: Path) -> StationConfig:
    lat, lon = at(6000, 0)
    zones = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "tfr", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"kind": "no_fly", "radius_m": 1200}},
    ]}  # fmt: skip
    (tmp_path / "zones.geojson").write_text(json.dumps(zones))
    return StationConfig.model_validate({
        "name": "e2e", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0,
        "zones_file": str(tmp_path / "zones.geojson"), "tick_s": 1.0,
        "fleet": [{"id": "d1", "kind": "drone"}, {"id": "d2", "kind": "drone"}, {"id": "r1", "kind": "robot"},
                  {"id": "v1", "kind": "van"}],
        "api": {"tokens": hash_tokens({TOKEN: "operator"})},
    })  # fmt: skip


def package(key: str, kg: float, east: float, north: float) -> dict[str, Any]:
    lat, lon = at(east, north)
    return {"key": key, "weight": kg, "weight_unit": "kg", "dest_lat": lat, "dest_lon": lon}


async def wait_all_done(
    client: httpx.AsyncClient, ids: list[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Follow the event stream until every package is delivered or with a van (no polling loop)."""
    async with asyncio.timeout(timeout_s):
        states = {}
        for pid in ids:
            states[pid] = (await client.get(f"/v1/packages/{pid}")).json()
        pending = {pid for pid, p in states.items() if p["state"] not in DONE}
        since = 0
        while pending:
            page = (await client.get("/v1/events/recent", params={"since": since})).json()
            for event in page["events"]:
                since = max(since, event["seq"])
                if (
                    event.get("type") == "package"
                    and event.get("package_id") in pending
                    and event.get("state") in DONE
                ):
                    pending.discard(event["package_id"])
            if pending:
                await asyncio.sleep(0.2)  # the recent-events endpoint is a snapshot; the WS test covers push
        return {pid: (await client.get(f"/v1/packages/{pid}")).json() for pid in ids}


@pytest.mark.slow
async def test_mixed_batch_is_carried_by_the_right_modes(tmp_path: Path) -> None:
    config = station_config(tmp_path)
    async with SimStation(config, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=40) as station:
        assert station.service is not None
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        api = asyncio.create_task(serve(station.service, "127.0.0.1", 0, on_ready=ready.set_result))
        port = await ready
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as client:
            batch = [
                package("light-near", 1.0, 2500, 2500),  # drone
                package("heavy-near", 5.0, 600, 700),  # robot: over the drone limit, in robot range
                package("behind-zone", 1.2, 9000, 0),  # drone, around the no-fly circle
                package("in-zone", 1.0, 6000, 300),  # van: inside the no-fly circle
                package("heavy-far", 12.0, 0, -7000),  # van: overweight for drones, beyond robots
                package("far", 1.0, 0, 21000),  # van: beyond every radius
            ]
            r = await client.post("/v1/packages", json={"packages": batch})
            assert r.status_code == 201, r.text
            ids = {item["key"]: item["id"] for item in r.json()["packages"]}
            final = await wait_all_done(client, list(ids.values()), timeout_s=150)
            by_key = {key: final[pid] for key, pid in ids.items()}

            assert (by_key["light-near"]["state"], by_key["light-near"]["mode"]) == ("delivered", "drone")
            assert (by_key["heavy-near"]["state"], by_key["heavy-near"]["mode"]) == ("delivered", "robot")
            assert (by_key["behind-zone"]["state"], by_key["behind-zone"]["mode"]) == ("delivered", "drone")
            assert by_key["in-zone"]["state"] == "van" and "exclusion_zone" in by_key["in-zone"]["reasons"]
            assert by_key["heavy-far"]["state"] == "van"
            assert by_key["heavy-far"]["reasons"][:2] == ["overweight", "out_of_range"]
            assert by_key["far"]["state"] == "van" and by_key["far"]["reasons"] == ["out_of_range"]

            # The drones flew what the planner promised: the detour kept clear of the zone (simulator truth).
            copters = station.copters
            assert copters is not None
            centre = at(6000, 0)
            for vehicle in copters.vehicles:
                for lat, lon, _alt in vehicle.track:
                    d = math.hypot(
                        (lat - centre[0]) * 111_320.0,
                        (lon - centre[1]) * 111_320.0 * math.cos(math.radians(lat)),
                    )
                    assert d > 1200.0

            # The van feed gives each van package exactly once, across pages.
            seen: list[str] = []
            cursor = 0
            while True:
                page = (await client.get("/v1/van-fallback", params={"since": cursor, "limit": 2})).json()
                seen += [item["package"]["id"] for item in page["items"]]
                cursor = page["next"]
                if not page.get("more"):
                    break
            assert sorted(seen) == sorted(ids[k] for k in ("in-zone", "heavy-far", "far"))
        api.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await api


@pytest.mark.slow
async def test_a_drone_flies_two_deliveries_in_a_row(tmp_path: Path) -> None:
    """The second mission must start from its first item, not resume the first mission's final RTL."""
    config = StationConfig.model_validate(
        {**station_config(tmp_path).model_dump(exclude={"source"}), "fleet": [{"id": "d1", "kind": "drone"}]}
    )
    async with SimStation(config, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=40) as station:
        service = station.service
        assert service is not None
        from controller.packages import PackageIn

        first, second = await service.submit([
            PackageIn(**package("one", 1.0, 1500, 0)), PackageIn(**package("two", 1.0, 0, 1500)),
        ])  # fmt: skip
        async with asyncio.timeout(120):
            async for _event in service.bus.subscribe(since=0):
                done = [service.store.get(p.id).state for p in (first[0], second[0])]
                if all(str(s) in DONE for s in done):
                    break
        assert [str(service.store.get(p.id).state) for p in (first[0], second[0])] == [
            "delivered",
            "delivered",
        ]
        released = station.copters.vehicles[0].payload_released_at  # type: ignore[union-attr]
        assert released is not None
