"""Proof of delivery, end to end: a simulated drone and a simulated robot deliver through the whole station,
and each delivery's proof (where, when, how confirmed) is what the vehicles themselves reported.

The drone's proof must sit where the simulator's package actually fell (`SimCopter.payload_released_at`,
simulator truth), taken from the drone's own GLOBAL_POSITION_INT when it said "Gripper load releasing";
the robot's where its drop action FINISHED (its `agvPosition`). The proof is shown by the API, counted in
the end-of-day report, takes a photo URL (and refuses a bad one, changing nothing) and is still there when
the store is opened again after the controller stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.api.server import serve
from controller.missions.drone import DeliveryPlan, build_mission, fly_delivery, follow_delivery
from controller.simstation import SimStation
from controller.station import StationConfig
from controller.store import Store
from controller.tokens import hash_tokens
from tests.e2e.test_station import STATION, at, package, wait_all_done

OPERATOR, VIEWER, VEHICLE = "op-token", "view-token", "vehicle-token"
STATION_ALT_M = 300.0


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (a[0] - b[0]) * 111_320.0
    east = (a[1] - b[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(north, east)


@pytest.mark.slow
async def test_drone_and_robot_deliveries_are_proven_and_the_proof_is_kept(tmp_path: Path) -> None:
    config = StationConfig.model_validate({
        "name": "proof", "lat": STATION[0], "lon": STATION[1], "alt_m": STATION_ALT_M, "tick_s": 0.5,
        "fleet": [{"id": "d1", "kind": "drone"}, {"id": "r1", "kind": "robot"}, {"id": "v1", "kind": "van"}],
        "api": {"tokens": hash_tokens({OPERATOR: "operator", VIEWER: "viewer", VEHICLE: "vehicle"})},
    })  # fmt: skip
    store_url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    async with SimStation(config, store_url=store_url, speedup=40) as station:
        assert station.service is not None and station.copters is not None
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        api = asyncio.create_task(serve(station.service, "127.0.0.1", 0, on_ready=ready.set_result))
        port = await ready
        base = f"http://127.0.0.1:{port}"

        def client(token: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

        async with client(OPERATOR) as op, client(VIEWER) as view, client(VEHICLE) as vehicle:
            batch = [package("by-air", 1.0, 900, 700), package("by-foot", 5.0, 250, -200)]
            r = await op.post("/v1/packages", json={"packages": batch})
            assert r.status_code == 201, r.text
            ids = {item["key"]: item["id"] for item in r.json()["packages"]}
            final = await wait_all_done(op, list(ids.values()), timeout_s=120)
            air, foot = final[ids["by-air"]], final[ids["by-foot"]]
            assert (air["state"], air["mode"], foot["state"], foot["mode"]) == (
                "delivered", "drone", "delivered", "robot"
            )  # fmt: skip

            # The drone: its own report, at the place the package really fell, at delivery height.
            proof = air["proof"]
            assert proof["vehicle_id"] == "d1" and proof["kind"] == "drone"
            assert proof["confirmed_by"] == "vehicle" and proof["method"] == "gripper"
            assert proof["event"].startswith("Gripper load releas")
            fell = station.copters.vehicles[0].payload_released_at
            assert fell is not None
            assert metres((proof["lat"], proof["lon"]), fell) < 3.0
            assert metres((proof["lat"], proof["lon"]), at(900, 700)) < 5.0
            assert proof["distance_to_destination_m"] < 5.0
            assert proof["alt_agl_m"] == pytest.approx(5.0, abs=2.0)  # the plan's delivery altitude
            assert proof["alt_amsl_m"] == pytest.approx(STATION_ALT_M + proof["alt_agl_m"], abs=0.5)
            delivered_at = next(h["at"] for h in air["history"] if h["to_state"] == "delivered")
            assert datetime.fromisoformat(proof["at"]) <= datetime.fromisoformat(delivered_at)

            # The robot: its drop action FINISHED where it stood (agvPosition), at the destination.
            rproof = foot["proof"]
            assert rproof["vehicle_id"] == "r1" and rproof["kind"] == "robot"
            assert rproof["confirmed_by"] == "vehicle"  # in its own words, naming the load it handed over:
            assert rproof["event"] == f"drop FINISHED: load {ids['by-foot']} handed over"
            assert rproof["distance_to_destination_m"] < 3.0
            assert rproof["alt_amsl_m"] is None and rproof["photo_url"] is None

            # A photo URL from an integration: a bad one is refused with the field named and changes nothing.
            photo = f"/v1/packages/{ids['by-air']}/proof/photo"
            bad = await op.post(photo, json={"photo_url": "javascript:alert(1)"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "photo_url", bad.text
            viewer_try = await view.post(photo, json={"photo_url": "https://img.example/p.jpg"})
            assert viewer_try.status_code == 403
            assert (await op.get(f"/v1/packages/{ids['by-air']}")).json()["proof"]["photo_url"] is None
            # The vehicle integration's token attaches it, and may do nothing else (it reads no package).
            good = await vehicle.post(photo, json={"photo_url": "https://img.example/drop/by-air.jpg"})
            assert good.status_code == 200, good.text
            assert good.json()["photo_url"] == "https://img.example/drop/by-air.jpg"
            assert (await vehicle.get(f"/v1/packages/{ids['by-air']}")).status_code == 403
            assert (await vehicle.post("/v1/packages", json=package("nope", 1.0, 10, 10))).status_code == 403

            # The end-of-day report counts them and lists each delivery with its proof.
            report = (await op.get("/v1/report")).json()
            assert report["proof_of_delivery"]["with_proof"] == 2
            assert report["proof_of_delivery"]["by_confirmation"] == {"vehicle": 2}
            assert report["proof_of_delivery"]["with_photo"] == 1
            listed = {d["key"]: d["proof"] for d in report["deliveries"]}
            assert listed["by-air"]["photo_url"] == "https://img.example/drop/by-air.jpg"
            assert listed["by-foot"]["event"] == rproof["event"]
        api.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await api

    # Stored: the proofs are read back from the database after the controller has gone.
    with Store(store_url) as store:
        kept: dict[str, Any] = store.proofs_of(list(ids.values()))
    assert kept[ids["by-air"]]["photo_url"] == "https://img.example/drop/by-air.jpg"
    assert (kept[ids["by-air"]]["lat"], kept[ids["by-air"]]["lon"]) == (proof["lat"], proof["lon"])
    assert kept[ids["by-foot"]]["event"] == rproof["event"]


@pytest.mark.slow
async def test_a_release_nobody_heard_is_proven_as_inferred(drone_fleet: Any, drone_driver: Any) -> None:
    """The controller stops following mid-flight (it went away; the drone carries on in AUTO, FS_OPTIONS
    bit 1) and the drone releases unheard: the controller that follows it again proves the delivery from
    mission progress, says so (`inferred`), and places it where the drone then was, at the destination."""
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    north, east = 400.0, 300.0  # metres from the drone's home
    destination = (
        sim.home[0] + north / 111_320.0,
        sim.home[1] + east / (111_320.0 * math.cos(math.radians(sim.home[0]))),
    )
    sim.set_payload(1.0)
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    plan = DeliveryPlan(
        package_id="pkg-inferred", vehicle_id="drone-1", station=(sim.home[0], sim.home[1]),
        waypoints_out=[], destination=destination, waypoints_back=[], payload_kg=1.0, cruise_alt_m=40.0,
        continue_without_gcs=True, gcs_timeout_s=30.0,
    )  # fmt: skip
    release_seq = build_mission(plan).release_seq
    first = asyncio.create_task(fly_delivery(drone, plan))
    async with asyncio.timeout(60):
        while not (sim.armed and sim.mode == "AUTO" and sim.alt_m > 20):  # noqa: ASYNC110 (the simulator flies)
            await asyncio.sleep(0.05)
    first.cancel()  # the controller is gone: nobody reads the drone's words from here on
    with contextlib.suppress(asyncio.CancelledError):
        await first
    async with asyncio.timeout(60):
        while sim.payload_released_at is None or sim.missions.current <= release_seq:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    result = await follow_delivery(drone, plan)
    assert result.delivered and result.proof is not None, result.reason
    proof = result.proof
    assert proof.confirmed_by == "inferred" and proof.kind == "drone" and proof.method == "gripper"
    assert proof.event.startswith("mission past its release item")
    assert proof.lat is not None and proof.lon is not None
    assert metres((proof.lat, proof.lon), sim.payload_released_at) < 5.0
