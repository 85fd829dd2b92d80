"""`lastmile demo`: a whole simulated station, a stream of orders, a live dashboard, an end-of-day report.

Time in the demo is simulated: the station's clock runs `speedup` times faster than the wall clock, the
same factor the simulators use, so ETAs and deadlines mean what they say in the simulated day.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from controller.packages import PackageIn
from controller.packages import PackageState as S
from controller.report import period_report, report_table
from controller.simstation import SimStation
from controller.station import StationConfig, VehicleConfig
from controller.tokens import new_token
from controller.watch import SIM, follow
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


def demo_config(base: StationConfig, settings: DemoSettings) -> tuple[StationConfig, str]:
    """The example station with the asked-for fleet size (vans kept as they are), and its operator token.

    The token is made for this run and only its salted hash goes into the config, as `lastmile token create`
    would store it; the demo prints the token for the web console.
    """
    fleet = [
        VehicleConfig(id=f"d{i + 1}", kind=VehicleKind.DRONE, charge=1.0) for i in range(settings.drones)
    ]
    fleet += [
        VehicleConfig(id=f"r{i + 1}", kind=VehicleKind.ROBOT, charge=1.0) for i in range(settings.robots)
    ]
    fleet += [v for v in base.fleet if v.kind is VehicleKind.VAN]
    token, name, entry = new_token("operator", "demo")
    api = base.api.model_copy(update={"tokens": {name: entry}})
    # Security on, whatever the base says: the demo's drones get keys of their own (`SimStation`).
    update = {"fleet": fleet, "tick_s": 2.0, "api": api, "require_signing": True}
    return base.model_copy(update=update), token


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
    config, token = demo_config(base, settings)
    with tempfile.TemporaryDirectory(prefix="lastmile-demo-") as tmp:
        store_url = settings.store_url or f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"
        keys = Path(tmp) / "keys"  # the simulated drones' signing keys (0600), gone with the demo
        station = SimStation(config, store_url=store_url, speedup=settings.speedup, key_dir=keys)
        async with station:
            service = station.service
            assert service is not None
            clock = ScaledClock(settings.speedup)
            service.clock = clock
            orders = order_stream(config, settings.orders, settings.seed, clock())
            duration = settings.minutes * 60.0
            feed = asyncio.create_task(_feed(service, orders, duration * 0.5))
            served = await _serve_console(service, settings.port, console, token)
            watching = None
            if settings.live and served is not None:
                url = f"http://127.0.0.1:{served[1]}"
                watching = asyncio.create_task(follow(url, token, console=console, eta_clock=SIM))
            stop = _stop_on_signals()
            ended = "stopped"  # unless the wait says otherwise (an error ends it too)
            try:
                ended = await _wait(service, feed, duration, stop)
            finally:
                _default_signals()
                for task in (feed, watching, served[0] if served else None):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            end = service.clock() + timedelta(seconds=1)
            report = await asyncio.to_thread(
                period_report, service.store, clock.start_wall - timedelta(minutes=1), end,
                time_scale=settings.speedup, epoch=clock.start_wall,
            )  # fmt: skip
    report["ended"] = {"why": ended, "text": _ended_text(ended, settings, report)}
    console.line()  # the live screen's last line may lack its end
    console.print(report_table(report, "End of the simulated day (times in simulated minutes)"))
    console.print(f"the day ended: {report['ended']['text']}")
    return report


def _ended_text(why: str, settings: DemoSettings, report: dict[str, Any]) -> str:
    """Why the demo's day ended, in one line, with what was left unfinished."""
    left = report["accounting"]["still_out"]
    unfinished = f"; {left} package{'s' if left != 1 else ''} not finished yet" if left else ""
    if why == "time_limit":
        simulated = settings.minutes * settings.speedup
        return (
            f"time ran out ({settings.minutes:g} wall-clock min = {simulated:g} simulated min, --minutes)"
            f"{unfinished}"
        )
    if why == "all_done":
        return "every order was delivered or handed to a van"
    return f"stopped early (Ctrl-C): the report covers the day so far{unfinished}"


async def _serve_console(
    service: Any, port: int | None, console: Console, token: str
) -> tuple[asyncio.Task[None], int] | None:
    """Serve the API and the web console while the demo runs, on `port` or any free one if it is taken."""
    if port is None:
        return None
    from controller.api.server import serve

    for attempt in (port, 0):
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(service, "127.0.0.1", attempt, on_ready=ready.set_result))
        done, _ = await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready in done:
            console.print(f"web console: http://127.0.0.1:{ready.result()}/  (operator token: {token})")
            return task, ready.result()
        with contextlib.suppress(Exception):
            task.result()  # the port was taken: try any free one
    return None


async def _feed(service: Any, orders: list[PackageIn], over_s: float) -> None:
    """Submit orders in small batches spread over the first part of the run."""
    batches = [orders[i : i + 4] for i in range(0, len(orders), 4)]
    for batch in batches:
        await service.submit(batch)
        await asyncio.sleep(over_s / max(1, len(batches)))


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_on_signals() -> asyncio.Event:
    """Ctrl-C (or SIGTERM) ends the day early, with its report, instead of the process.

    Where the loop cannot take signal handlers (Windows) Ctrl-C stops the demo without a report.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _default_signals() -> None:
    """A second Ctrl-C, while the report is being made, stops the process as usual."""
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)


async def _wait(service: Any, feed: asyncio.Task[None], duration: float, stop: asyncio.Event) -> str:
    """Until the time is up, `stop` is set, or every order is finished once all were submitted; which of
    the three ended it (`time_limit`, `stopped`, `all_done`)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    unfinished = (S.RECEIVED, S.ASSIGNED, S.LAUNCHING, S.EN_ROUTE, S.FAILED)
    while loop.time() < end and not stop.is_set():
        if feed.done():
            counts = await asyncio.to_thread(service.store.count_by_state)
            if sum(counts[s] for s in unfinished) == 0:
                return "all_done"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(0.5, max(0.0, end - loop.time())))
    return "stopped" if stop.is_set() else "time_limit"
