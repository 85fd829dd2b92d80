"""`GET /v1/airspace/intents` over real HTTP from a real station: a simulated drone (MAVLink over TCP), the
real driver and `StationService`, and a delivery whose flight the station booked in its airspace.

The volumes are read while the drone flies, checked against the station and the destination (the polygons
are where the flight goes), and gone once the flight is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from shapely.geometry import Point, shape

from controller.api.server import serve
from controller.packages import PackageIn
from controller.simstation import SimStation
from controller.station import StationConfig
from controller.tokens import hash_tokens

STATION = (33.4400, -112.2560)
TOKENS = {"op-token": "operator", "view-token": "viewer", "disp-token": "dispatcher"}
HASHED = hash_tokens(TOKENS)  # type: ignore[arg-type] # the station file's salted hashes of TOKENS
DEST_EN = (900.0, 700.0)  # east, north of the station (m)


def at(east_m: float, north_m: float) -> tuple[float, float]:
    lat = STATION[0] + north_m / 111_320.0
    lon = STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0])))
    return lat, lon


def metres(lon: float, lat: float) -> tuple[float, float]:
    """(east, north) of a lon/lat from the station (flat-earth; fine at a few km)."""
    return (
        (lon - STATION[1]) * 111_320.0 * math.cos(math.radians(STATION[0])),
        (lat - STATION[0]) * 111_320.0,
    )


def config() -> StationConfig:
    return StationConfig.model_validate({
        "name": "intents", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0, "tick_s": 60.0,
        "fleet": [{"id": "d1", "kind": "drone"}, {"id": "v1", "kind": "van"}],
        "api": {"tokens": HASHED},
    })  # fmt: skip


@contextlib.asynccontextmanager
async def station_api(tmp_path: Path) -> AsyncIterator[tuple[SimStation, str]]:
    store = f"sqlite:///{tmp_path / 's.sqlite3'}"
    async with SimStation(config(), store_url=store, speedup=20) as station:
        assert station.service is not None
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(station.service, "127.0.0.1", 0, on_ready=ready.set_result))
        try:
            yield station, f"http://127.0.0.1:{await ready}"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def as_role(url: str, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


async def mission_reaches(station: SimStation, mission_id: str, states: set[str], timeout_s: float) -> str:
    """The first of `states` the mission reaches (events replayed from the start: none is missed)."""
    assert station.service is not None
    async with asyncio.timeout(timeout_s):
        async for event in station.service.bus.subscribe(since=0):
            if (
                event.get("type") == "mission"
                and event.get("mission_id") == mission_id
                and event["state"] in states
            ):
                return str(event["state"])
    raise AssertionError("the event stream ended")


@pytest.mark.slow
async def test_a_flying_drone_publishes_its_reserved_volumes(tmp_path: Path) -> None:
    async with (
        station_api(tmp_path) as (station, url),
        as_role(url, "op-token") as op,
        as_role(url, "view-token") as viewer,
    ):
        service = station.service
        assert service is not None
        # Nothing booked yet: an empty collection, with the station and the time it was read.
        r = await op.get("/v1/airspace/intents", params={"vehicle_id": "d1"})
        assert r.status_code == 200, r.text
        empty = r.json()
        assert empty["type"] == "FeatureCollection" and empty["features"] == []
        assert empty["station"] == {"name": "intents", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0}

        lat, lon = at(*DEST_EN)
        [(_, _, decision)] = await service.submit(
            [PackageIn(key="p1", weight=1.0, dest_lat=lat, dest_lon=lon)]
        )
        assert decision["decision"] == "drone" and decision["vehicle_id"] == "d1", decision
        [mission] = await service.missions()
        over = asyncio.create_task(
            mission_reaches(station, mission.id, {"completed", "failed", "aborted"}, 60)
        )

        # While the flight is under way (the drone is taking off), its volumes are published.
        assert await mission_reaches(station, mission.id, {"en_route"}, 30) == "en_route"
        before = datetime.now(UTC)
        r = await viewer.get("/v1/airspace/intents", params={"vehicle_id": "d1"})
        assert r.status_code == 200, r.text
        geo = r.json()
        assert datetime.fromisoformat(geo["generated_at"]) >= before
        features = geo["features"]
        assert len(features) >= 4, features
        kinds = {f["properties"]["kind"] for f in features}
        assert {"climb", "cruise", "descent"} <= kinds, kinds
        for f in features:
            p = f["properties"]
            assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon", f
            assert p["flight_id"] == mission.id and p["vehicle_id"] == "d1"
            assert p["alt_ref"] == "station_ground"
            assert 0.0 <= p["alt_lo_m"] < p["alt_hi_m"] <= service.config.altitude_ceiling_m, p
            t0, t1 = datetime.fromisoformat(p["t0"]), datetime.fromisoformat(p["t1"])
            assert t0.tzinfo is not None and t0 < t1, p
            ring = f["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and len(ring) >= 4
            # Near the station and the route: nothing farther out than the destination plus a margin.
            for lon, lat in ring:
                assert math.hypot(*metres(lon, lat)) < math.hypot(*DEST_EN) + 300.0, (p["phase"], lon, lat)
        # The volumes cover the way there: the station and the destination each lie in some volume.
        shapes = [shape(f["geometry"]) for f in features]
        station_pt, dest_pt = Point(STATION[1], STATION[0]), Point(at(*DEST_EN)[1], at(*DEST_EN)[0])
        assert any(s.buffer(1e-5).contains(station_pt) for s in shapes)
        assert any(s.buffer(1e-5).contains(dest_pt) for s in shapes)
        # The flight's windows run from about now into the future (wall clock, not the drones' clock).
        ends = [datetime.fromisoformat(f["properties"]["t1"]) for f in features]
        assert max(ends) > before
        assert (max(ends) - before).total_seconds() < 600

        # Without a filter: every drone's volumes (here the same ones); a van has none; a stranger is 404.
        everything = (await op.get("/v1/airspace/intents")).json()["features"]
        assert {f["properties"]["flight_id"] for f in everything} == {mission.id}
        assert len(everything) >= len(features)
        van = await op.get("/v1/airspace/intents", params={"vehicle_id": "v1"})
        assert van.status_code == 200 and van.json()["features"] == []
        unknown = await op.get("/v1/airspace/intents", params={"vehicle_id": "d9"})
        assert unknown.status_code == 404
        error = unknown.json()["error"]
        assert error["field"] == "vehicle_id" and error["code"] == "not_found" and "d9" in error["reason"]

        # Auth like every fleet read: no token 401, a dispatcher's 403.
        async with as_role(url, None) as anonymous, as_role(url, "disp-token") as dispatcher:
            r = await anonymous.get("/v1/airspace/intents")
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["code"] == "unauthorized"
            assert (await dispatcher.get("/v1/airspace/intents")).status_code == 403

        # The flight ends (delivered, back on its pad): its volumes are freed.
        assert await over == "completed"
        r = await op.get("/v1/airspace/intents", params={"vehicle_id": "d1"})
        assert r.status_code == 200 and r.json()["features"] == []


async def test_the_endpoint_is_documented_in_openapi(tmp_path: Path) -> None:
    from controller.api.app import create_app
    from controller.service import StationService
    from controller.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        app = create_app(StationService(config(), store), webhook=False)
        schema: dict[str, Any] = app.openapi()
    finally:
        store.close()
    op = schema["paths"]["/v1/airspace/intents"]["get"]
    assert {"200", "401", "403", "404"} <= set(op["responses"])
    assert [p["name"] for p in op["parameters"]] == ["vehicle_id"]
    body = schema["components"]["schemas"]["OperationalIntents"]
    assert {"type", "station", "generated_at", "features"} <= set(body["properties"])
    props = schema["components"]["schemas"]["IntentProperties"]["properties"]
    assert {"alt_lo_m", "alt_hi_m", "alt_ref", "t0", "t1", "phase", "kind", "flight_id"} <= set(props)
