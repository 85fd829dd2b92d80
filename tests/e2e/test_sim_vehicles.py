"""`SimVehicles` (what `lastmile serve --simulate` starts) with a station that names its own broker.

The simulated robots then go through that broker, logged in as the controller, and no other broker is
started: the controller links to the robots exactly as the station file says.
"""

from __future__ import annotations

import asyncio
import contextlib

from controller.service.runtime import connect_fleet
from controller.simstation import SimVehicles
from controller.station import BrokerConfig, StationConfig, VehicleConfig
from sitl.broker import Broker
from vehicles.spec import VehicleKind


async def test_simulated_robots_use_the_station_broker() -> None:
    async with Broker(robots=[], tls=False) as broker:
        user, password = broker.controller_credentials()
        config = StationConfig(
            name="own broker",
            lat=33.44,
            lon=-112.256,
            fleet=[
                VehicleConfig(id="r1", kind=VehicleKind.ROBOT),
                VehicleConfig(id="r2", kind=VehicleKind.ROBOT),
            ],
            broker=BrokerConfig(url=broker.url, username=user, password=password),
        )
        async with contextlib.AsyncExitStack() as stack:
            sims = SimVehicles(config, speedup=20)
            linked = await sims.start(stack)
            assert sims.broker is None, "no second broker when the station names one"
            assert linked.broker == config.broker and linked.vehicle_speedup == 20
            carriers = await connect_fleet(linked, stack, robot_wait_s=10)
            online = {vid: carrier.snapshot().online for vid, carrier in carriers.items()}
            async with asyncio.timeout(10):
                while not all(online.values()):  # their retained ONLINE arrives with the link
                    await asyncio.sleep(0.1)
                    online = {vid: carrier.snapshot().online for vid, carrier in carriers.items()}
            assert online == {"r1": True, "r2": True}
