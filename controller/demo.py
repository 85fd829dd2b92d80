"""`lastmile demo`: a whole simulated station, a stream of orders, a live dashboard, an end-of-day report.

Time in the demo is simulated: the station's clock runs `speedup` times faster than the wall clock, the
same factor the simulators use, so ETAs and deadlines mean what they say in the simulated day.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from controller.packages import PackageIn, PackageState
from controller.report import period_report, report_table
from controller.simstation import SimStation
from controller.station import StationConfig, VehicleConfig
from vehicles.spec import VehicleKind


@dataclass
class DemoSettings:
    """What `lastmile demo` was asked for."""

    speedup: float = 20.0
    drones: int = 6
    robots: int = 3
    orders: int = 40
    minutes: float = 2.0
    seed: int = 5050
    store_url: str | None = None
    live: bool = True
    port: int | None = 8750  # the API and web console (None: not served; 0: any free port)


class ScaledClock:
    """Simulated time: starts at the real now, runs `speedup` times faster."""

    def __init__(self, speedup: float) -> None:
        self.speedup = speedup
        self.start_wall = datetime.now(UTC)
        self._t0 = asyncio.get_running_loop().time()

    def __call__(self) -> datetime:
        elapsed = asyncio.get_running_loop().time() - self._t0
        return self.start_wall + timedelta(seconds=elapsed * self.speedup)


def demo_config(base: StationConfig, settings: DemoSettings) -> StationConfig:
    """The example station with the asked-for fleet size; vans kept as they are."""
    fleet = [
        VehicleConfig(id=f"d{i + 1}", kind=VehicleKind.DRONE, charge=1.0) for i in range(settings.drones)
    ]
    fleet += [
        VehicleConfig(id=f"r{i + 1}", kind=VehicleKind.ROBOT, charge=1.0) for i in range(settings.robots)
    ]
    fleet += [v for v in base.fleet if v.kind is VehicleKind.VAN]
    api = base.api.model_copy(update={"tokens": {secrets.token_urlsafe(12): "operator"}})
    return base.model_copy(update={"fleet": fleet, "tick_s": 2.0, "api": api})


def order_stream(config: StationConfig, count: int, seed: int, now: datetime) -> list[PackageIn]:
    """Realistic orders: mostly light, a heavy tail; near, far, and beyond; some with deadlines."""
    rng = random.Random(seed)
    frame = config.frame
    out = []
    for i in range(count):
        u = rng.random()
        kg = rng.uniform(0.3, 2.2) if u < 0.6 else rng.uniform(2.3, 6.0) if u < 0.85 else rng.uniform(6, 30)
        v = rng.random()
        dist = (
            rng.uniform(300, 2500)
            if v < 0.35
            else rng.uniform(2500, 9000)
            if v < 0.85
            else rng.uniform(17000, 22000)
        )
        bearing = rng.uniform(0, 2 * math.pi)
        lon, lat = frame.to_wgs84(dist * math.sin(bearing), dist * math.cos(bearing))
        deadline = now + timedelta(hours=rng.choice([1, 2, 3])) if rng.random() < 0.2 else None
        out.append(
            PackageIn(
                key=f"demo-{seed}-{i:04d}",
                weight=round(kg, 2),
                dest_lat=float(lat),
                dest_lon=float(lon),
                deadline=deadline,
                priority=rng.choice([0, 0, 0, 1, 2]),
            )
        )
    return out


async def run_demo(base: StationConfig, settings: DemoSettings, console: Console) -> dict[str, Any]:
    """Run the demo to its end and return the report (also printed)."""
    config = demo_config(base, settings)
    with tempfile.TemporaryDirectory(prefix="lastmile-demo-") as tmp:
        store_url = settings.store_url or f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"
        station = SimStation(config, store_url=store_url, speedup=settings.speedup)
        async with station:
            service = station.service
            assert service is not None
            clock = ScaledClock(settings.speedup)
            service.clock = clock
            orders = order_stream(config, settings.orders, settings.seed, clock())
            duration = settings.minutes * 60.0
            feed = asyncio.create_task(_feed(service, orders, duration * 0.5))
            console_task = await _serve_console(service, settings.port, console)
            try:
                if settings.live:
                    with Live(_dashboard(service), console=console, refresh_per_second=2) as live:
                        await _wait(service, feed, duration, lambda: live.update(_dashboard(service)))
                else:
                    await _wait(service, feed, duration, lambda: None)
            finally:
                feed.cancel()
                if console_task is not None:
                    console_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await console_task
            end = service.clock() + timedelta(seconds=1)
            report = await asyncio.to_thread(
                period_report, service.store, clock.start_wall - timedelta(minutes=1), end,
                time_scale=settings.speedup, epoch=clock.start_wall,
            )  # fmt: skip
    console.print(report_table(report, "End of the simulated day (times in simulated minutes)"))
    return report


async def _serve_console(service: Any, port: int | None, console: Console) -> asyncio.Task[None] | None:
    """Serve the API and the web console while the demo runs, on `port` or any free one if it is taken."""
    if port is None:
        return None
    from controller.api.server import serve

    token = next(iter(service.config.api.tokens))
    for attempt in (port, 0):
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(service, "127.0.0.1", attempt, on_ready=ready.set_result))
        done, _ = await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready in done:
            console.print(f"web console: http://127.0.0.1:{ready.result()}/  (operator token: {token})")
            return task
        with contextlib.suppress(Exception):
            task.result()  # the port was taken: try any free one
    return None


async def _feed(service: Any, orders: list[PackageIn], over_s: float) -> None:
    """Submit orders in small batches spread over the first part of the run."""
    batches = [orders[i : i + 4] for i in range(0, len(orders), 4)]
    for batch in batches:
        await service.submit(batch)
        await asyncio.sleep(over_s / max(1, len(batches)))


async def _wait(service: Any, feed: asyncio.Task[None], duration: float, refresh: Any) -> None:
    """Until the time is up, or every order is finished once all were submitted."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    while loop.time() < end:
        refresh()
        if feed.done():
            counts = await asyncio.to_thread(service.store.count_by_state)
            if (
                sum(
                    counts[s]
                    for s in (
                        PackageState.RECEIVED,
                        PackageState.ASSIGNED,
                        PackageState.LAUNCHING,
                        PackageState.EN_ROUTE,
                        PackageState.FAILED,
                    )
                )
                == 0
            ):
                break
        with_timeout = min(0.5, max(0.0, end - loop.time()))
        await asyncio.sleep(with_timeout)
    refresh()


def _dashboard(service: Any) -> Group:
    fleet = Table(
        title=f"Fleet — {service.config.name}" + (" [red](grounded)[/]" if service.grounded else "")
    )
    for column in ("vehicle", "kind", "mode", "battery", "position", "mission"):
        fleet.add_column(column)
    for v in service.fleet_status():
        battery = f"{v['charge'] * 100:.0f} %" if v.get("charge") is not None else ""
        pos = f"{v['lat']:.4f}, {v['lon']:.4f}" if v.get("lat") is not None else ""
        if v["kind"] == "van":
            continue
        fleet.add_row(
            v["vehicle_id"],
            v["kind"],
            v.get("mode") or ("online" if v["online"] else "offline"),
            battery,
            pos,
            (v.get("mission_id") or "")[:8],
        )
    counts = service.store.count_by_state()
    queue = Table(title="Packages")
    for state in counts:
        queue.add_column(str(state))
    queue.add_row(*[str(n) for n in counts.values()])
    events = Table(title="Recent events")
    events.add_column("event")
    for e in service.bus.recent(max(0, service.bus.last_seq - 8)):
        words = " ".join(
            f"{k}={v}" for k, v in e.items() if k not in ("seq", "at", "t") and v not in (None, [])
        )
        events.add_row(words[:150])
    return Group(fleet, queue, events)
