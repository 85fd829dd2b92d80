"""The `lastmile` command line (typer + rich).

Every command turns our own errors (`LastmileError`: bad input, bad zones, refused plans) into one red
line naming the field and the reason, and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from geofences.errors import LastmileError

if TYPE_CHECKING:
    from controller.simstation import SimVehicles
    from controller.station import StationConfig

app = typer.Typer(
    help="lastmile-fleet: a fleet controller for drone, sidewalk-robot and van delivery.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
zones_app = typer.Typer(help="Geofence (zone file) tools.", no_args_is_help=True)
sitl_app = typer.Typer(help="Simulated vehicles to fly and drive against.", no_args_is_help=True)
app.add_typer(zones_app, name="zones")
app.add_typer(sitl_app, name="sitl")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error is one line: paths and commands stay whole


def _fail(exc: LastmileError | OSError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}")  # "[lon, lat]" is no markup
    return typer.Exit(code=2)


def _parse_at(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise typer.BadParameter(f"'{at}' is not an ISO 8601 time (e.g. 2026-12-01T16:00:00Z)") from None
    if when.tzinfo is None:
        raise typer.BadParameter(f"'{at}' has no time zone; add Z or an offset such as -07:00")
    return when


@app.command()
def assign(
    packages_csv: Annotated[
        Path | None,
        typer.Argument(help="packages CSV (weights in kg or lb, decimal degrees); default: example"),
    ] = None,
    station: Annotated[
        Path | None, typer.Option("--station", "-s", help="station TOML (default: example)")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="planning instant, ISO 8601 with zone (default: now)")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write every decision as JSON here")
    ] = None,
    limit: Annotated[int, typer.Option(help="rows to print (0 = all)")] = 40,
    allow_late: Annotated[
        bool, typer.Option("--allow-late", help="accept deadlines before the planning instant")
    ] = False,
) -> None:
    """Decide who carries each package: drone, robot, a later trip (queued), or a van with its reasons."""
    from controller.assignment import Demand, Planner
    from controller.examples import EXAMPLE_PACKAGES, EXAMPLE_STATION
    from controller.fleet import fleet_from_station
    from controller.intake import load_packages_csv
    from controller.station import load_station

    when = _parse_at(at)
    try:
        if json_out is not None:
            check_output_path(json_out, "--json")  # before the work, not as a traceback after the table
        config = load_station(station or EXAMPLE_STATION)
        read = load_packages_csv(packages_csv or EXAMPLE_PACKAGES, now=when, allow_late=allow_late)
        if read.encoding_note:  # so an odd name in the output can be traced to the file's encoding
            err_console.print(f"note: {packages_csv} is {read.encoding_note}", markup=False, highlight=False)
        incoming = read.packages
        planner = Planner(config, at=when)
        decisions = planner.plan([Demand.from_request(p) for p in incoming], fleet_from_station(config))
    except LastmileError as exc:
        raise _fail(exc) from exc

    zone = ZoneInfo(config.notifications.time_zone)  # the station's zone when its file names one, else UTC
    title = f"{config.name}: {len(decisions)} packages, planned at {_utc(when, zone)}"
    shown = decisions if limit <= 0 else decisions[:limit]
    rows = [
        (
            d.package_id,
            d.mode if d.status != "queued" else f"{d.mode} (queued)",
            d.vehicle_id or "",
            _utc(d.eta, zone) if d.eta else "",
            f"{d.energy_wh:.0f}" if d.energy_wh is not None else "",
            f"{d.margin_wh:.0f}" if d.margin_wh is not None else "",
            _reasons_text(d.reasons, d.hints, d.detoured),
        )
        for d in shown
    ]
    if console.is_terminal:
        table = Table(title=title)
        named = _utc(when, zone).rsplit(" ", 1)[-1]  # "UTC", "MST": the zone in the ETA's heading
        for column in _ASSIGN_COLUMNS:
            heading = f"ETA ({named})" if column == "ETA" else column
            table.add_column(heading, no_wrap=column != "reasons / hints")
        for d, row in zip(shown, rows, strict=True):
            eta = row[3].removesuffix(f" {named}")
            table.add_row(row[0], _style(d.status, d.mode), row[2], eta, *row[4:])
        console.print(table)
    else:
        # Piped or redirected: rich would squeeze the table into 80 columns (reasons cut to a word a line).
        # One tab-separated line per package instead, whole, for `less`, `grep`, `cut` or a spreadsheet.
        # Written as they are: rich would expand the tabs to spaces.
        lines = [title, "\t".join(_ASSIGN_COLUMNS), *("\t".join(row) for row in rows)]
        console.file.write("\n".join(lines) + "\n")
    if limit and len(decisions) > limit:
        console.print(f"… {len(decisions) - limit} more (use --limit 0 or --json)")
    counts = Counter(d.mode if d.status != "queued" else f"{d.mode} (queued)" for d in decisions)
    console.print("  ".join(f"[bold]{k}[/]: {v}" for k, v in sorted(counts.items())), soft_wrap=True)
    van_reasons = Counter(r for d in decisions if d.status == "van" for r in d.reasons)
    if van_reasons:
        said = ", ".join(f"{r} {n}" for r, n in van_reasons.most_common())
        console.print(f"van reasons: {said}", soft_wrap=True)
    if json_out is not None:
        try:
            json_out.write_text(
                json.dumps([d.as_dict() for d in decisions], indent=1) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            raise _fail(LastmileError(f"--json: cannot write {json_out}: {exc.strerror or exc}")) from exc
        console.print(f"wrote {json_out}")


def check_output_path(path: Path, option: str) -> None:
    """Refuse an output file that cannot be written (missing folder, a folder itself), naming the option."""
    from controller.errors import InputError

    folder = path.parent
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name", field=option)
    if not folder.is_dir():
        why = "does not exist" if not folder.exists() else "is not a folder"
        raise InputError(f"cannot write {path}: the folder {folder} {why}", field=option)


@app.command()
def demo(
    station: Annotated[Path | None, typer.Option(help="station TOML (default: the Tolleson example)")] = None,
    speedup: Annotated[float, typer.Option(min=1.0, help="simulated seconds per wall-clock second")] = 20.0,
    drones: Annotated[int, typer.Option(min=0, help="simulated drones")] = 6,
    robots: Annotated[int, typer.Option(min=0, help="simulated sidewalk robots")] = 3,
    orders: Annotated[int, typer.Option(min=1, help="orders in the stream")] = 40,
    minutes: Annotated[float, typer.Option(min=0.1, help="wall-clock minutes to run at most")] = 2.0,
    seed: Annotated[int, typer.Option(help="random seed of the order stream")] = 5050,
    live: Annotated[bool, typer.Option(help="show the live dashboard")] = True,
    port: Annotated[int, typer.Option(help="port of the web console and API (0: any free port)")] = 8750,
) -> None:
    """Run a whole simulated station (drones, robots, broker, controller) on a stream of orders."""

    from controller import eventloop
    from controller.demo import DemoSettings, run_demo
    from controller.examples import EXAMPLE_STATION
    from controller.station import load_station

    try:
        config = load_station(station or EXAMPLE_STATION)
        settings = DemoSettings(
            port=port,
            speedup=speedup,
            drones=drones,
            robots=robots,
            orders=orders,
            minutes=minutes,
            seed=seed,
            live=live,
        )
        eventloop.run(run_demo(config, settings, console))
    except LastmileError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        err_console.print("interrupted")


@app.command()
def serve(
    station: Annotated[
        Path, typer.Option("--station", "-s", help="station TOML (fleet URLs, broker, API, tokens)")
    ],
    store: Annotated[
        str | None, typer.Option(help="store URL (default: the station file's store_url)")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="API address (default: the station file's api.host)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port (default: the station file's api.port)")] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="fly and drive simulated vehicles: one simulator per drone and robot of the station's fleet "
            "(and a broker when the station names none)",
        ),
    ] = False,
    speedup: Annotated[
        float | None,
        typer.Option(min=1.0, help="with --simulate: simulated seconds per wall-clock second (default 1)"),
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option(help="where tokens made on the first start are kept (default: STATION.tokens.toml)"),
    ] = None,
) -> None:
    """Run the station controller: planning, vehicles, missions and the HTTP API, until SIGTERM/Ctrl-C.

    A station file with no API tokens gets an operator and a dispatcher token on the first start: printed
    once, their hashes kept in a tokens file beside the station file, so the same tokens work after a
    restart (docs/operators.md). `--simulate` starts the built-in simulators for the station's fleet: its
    drones over MAVLink on the station's pads, its robots through the station's broker or one started here.

    One leader per station: on a PostgreSQL store a second `serve` of the same station is a hot standby (it
    answers reads and /healthz, refuses writes with 503) and takes over when the leader's lease frees; a
    leader that finds another took over exits with code 3. On SQLite a second `serve` of the same store
    file refuses to start, naming the process that holds it (docs/operations.md).
    """
    import asyncio
    import contextlib
    import os
    import signal
    import socket
    import threading
    import time

    from controller import eventloop
    from controller.api.server import serve as serve_api
    from controller.service import StationService
    from controller.service.carriers_drone import SecurityEvents
    from controller.service.leadership import FENCED_EXIT_CODE, FENCED_EXIT_S, Leadership
    from controller.service.runtime import connect_fleet
    from controller.station import load_station
    from controller.store import Store
    from controller.store.lease import LeaseLost

    if speedup is not None and not simulate:
        raise typer.BadParameter("--speedup sets the simulators' pace: give it with --simulate")
    try:
        config = _with_tokens(load_station(station), station, tokens_file)
    except LastmileError as exc:
        raise _fail(exc) from exc
    if not simulate and not any(v.url for v in config.fleet) and config.broker is None:
        console.print(
            f"lastmile serve: no vehicle of {station} has a link (fleet url, [broker]): every package will "
            "go to the vans; `lastmile serve --simulate` flies and drives simulated ones",
            markup=False,
            soft_wrap=True,
        )

    async def main() -> None:
        nonlocal config
        url = store or config.store_url
        api_host = host or config.api.host
        api_port = port if port is not None else config.api.port
        scheme = "https" if config.api.tls else "http"
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            db = Store(url)
            stack.callback(db.close)
            holder = f"{socket.gethostname()} pid {os.getpid()}, api {scheme}://{api_host}:{api_port}"
            role = Leadership(config.name, url, holder)
            stack.push_async_callback(role.close)  # after the service stopped: a standby may take over
            leading = await role.open()  # SQLite: the store file's lock, or StoreLocked naming its holder
            db.fence = role.fence  # every write checks the lease is still ours
            sims = None
            clock: dict[str, Any] = {}
            if simulate:  # `sitl` is imported here only: the controller itself never needs it
                from controller.demo import ScaledClock
                from controller.simstation import SimVehicles

                sims = SimVehicles(config, speedup=speedup or 1.0)
                config = await sims.start(stack)  # they stop after the service and the links (LIFO)
                console.print(_simulating(sims, config), markup=False, soft_wrap=True)
                if sims.speedup > 1:  # plans and ETAs on the vehicles' time, as in the demo (`clock: sim`)
                    clock["clock"] = ScaledClock(sims.speedup)
            drone_clock = sims.drone_clock() if sims else None
            service = StationService(config, db, drone_clock=drone_clock, **clock)
            stopping = asyncio.create_task(stop.wait())
            tasks: list[asyncio.Task[None]] = [stopping]

            def start_api(what: str) -> asyncio.Task[None]:
                def ready(p: int) -> None:
                    console.print(
                        f"lastmile serve: {config.name} on port {p}, {what}; "
                        f"console at {scheme}://{api_host}:{p}/",
                        soft_wrap=True,  # an address cut in two cannot be copied
                    )

                task = asyncio.create_task(serve_api(service, api_host, api_port, on_ready=ready, role=role))
                tasks.append(task)
                return task

            async def end(*more: asyncio.Task[None]) -> BaseException | None:
                """Cancel what runs; what stopped the API, if it failed."""
                failed = api is not None and api.done() and not api.cancelled() and api.exception()
                for task in [*tasks, *more]:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                return failed or None

            api = None
            if not leading:  # a hot standby: reads only, until the leader's lease frees
                api = start_api(f"standby ({role.describe_leader()})")
                waiting = asyncio.create_task(role.wait_for_lease())
                await asyncio.wait([api, stopping, waiting], return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    failed = await end(waiting)
                    if failed is not None:
                        raise failed
                    return
                console.print(
                    f"lastmile serve: {config.name}: the lease is ours (epoch {role.epoch}); taking over"
                )
            taking_over = time.monotonic()
            security = SecurityEvents()  # refused MAVLink messages, as `security` events on the bus
            service.carriers = await connect_fleet(config, stack, keep_trying=True, security=security)
            await service.start()  # reloads missions and re-attaches flights and robot orders in progress
            stack.push_async_callback(service.stop)  # before the links close and the lease is given up
            security.attach(lambda event: service.bus.publish("security", **event))
            role.serve_as_leader()
            if sims is not None and sims.copters is not None:  # the crew puts each parcel on its drone
                tasks.append(asyncio.create_task(sims.load_payloads(service), name="lastmile.serve.payloads"))
            linked = f"{len(service.carriers)} vehicles linked"
            if api is None:
                api = start_api(f"leader{'' if role.epoch is None else f' (epoch {role.epoch})'}, {linked}")
            else:
                console.print(
                    f"lastmile serve: {config.name}: leader (epoch {role.epoch}) "
                    f"{time.monotonic() - taking_over:.2f} s after getting the lease, {linked}"
                )
            watching = asyncio.create_task(role.watch())
            done, _ = await asyncio.wait([api, stopping, watching], return_when=asyncio.FIRST_COMPLETED)
            if watching in done:  # another controller took over: stop commanding vehicles, and go
                # A stop that hangs must not keep a fenced controller alive next to the new leader.
                deadline = threading.Timer(FENCED_EXIT_S, os._exit, args=(FENCED_EXIT_CODE,))
                deadline.daemon = True
                deadline.start()
                await end()
                raise watching.result()
            failed = await end(watching)
            if failed is not None:
                raise failed

    try:
        eventloop.run(main())
    except LeaseLost as exc:
        err_console.print(f"[bold red]fenced:[/] {exc}; exiting")
        raise typer.Exit(code=FENCED_EXIT_CODE) from exc
    except (LastmileError, OSError) as exc:  # OSError: the API's port is taken or not ours to bind
        raise _fail(exc) from exc


def _with_tokens(config: StationConfig, station: Path, tokens_file: Path | None) -> StationConfig:
    """`config` with every token `serve` accepts; on the first start (no token anywhere) two are made.

    The tokens made are printed once, here, with the file that keeps their hashes; a tokens file that
    cannot be written is refused (exit 2) with the command that makes a token instead.
    """
    from controller.cli_token import first_start_tokens

    try:
        entries, path, made = first_start_tokens(station, dict(config.api.tokens), tokens_file)
    except OSError as exc:
        command = f"lastmile token create --role operator --station {station}"
        raise LastmileError(
            f"{station} has no API tokens and {exc.filename or tokens_file} cannot be written "
            f"({exc.strerror or exc}): make one with `{command}`"
        ) from None
    if made:
        console.print(
            f"lastmile serve: no API tokens yet; made these (shown this once; their hashes are in {path}):",
            markup=False,
            soft_wrap=True,
        )
        for role, token in made.items():
            console.print(f"  {role:<11} {token}", markup=False, soft_wrap=True, highlight=False)
        console.print(
            "  give one with --token or LASTMILE_TOKEN (`lastmile status --token ...`); "
            "more with `lastmile token create`",
            markup=False,
            soft_wrap=True,
        )
    return config.model_copy(update={"api": config.api.model_copy(update={"tokens": entries})})


def _simulating(sims: SimVehicles, config: StationConfig) -> str:
    """One line: what `serve --simulate` started, so an operator knows which vehicles are not real."""
    parts = []
    if sims.drone_ids:
        parts.append(f"{len(sims.drone_ids)} drones over MAVLink ({', '.join(sims.drone_ids)})")
    if sims.robot_ids:
        where = sims.broker.url if sims.broker is not None else config.broker.url if config.broker else "?"
        parts.append(f"{len(sims.robot_ids)} robots through {where} ({', '.join(sims.robot_ids)})")
    what = " and ".join(parts) or "no vehicles (the fleet has no online drone or robot)"
    return f"lastmile serve: simulating {what}, {sims.speedup:g}x speed"


def _style(status: str, mode: str) -> str:
    colour = {"drone": "cyan", "robot": "green", "van": "yellow"}[mode]
    label = mode if status != "queued" else f"{mode} (queued)"
    return f"[{colour}]{label}[/]"


@zones_app.command("check")
def zones_check(
    zones_file: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection of zones")],
    station: Annotated[
        Path | None, typer.Option(help="station TOML: also check the station is not inside a zone")
    ] = None,
) -> None:
    """Validate a zone file and summarise it; exit 2 with the feature and field when it is invalid."""
    from geofences import LocalFrame, load_zones
    from geofences.checks import zone_geometry_xy

    try:
        zones = load_zones(zones_file)
        config = None
        if station is not None:
            from controller.station import load_station

            config = load_station(station)
            _check_station_outside(config.name, config.lat, config.lon, zones_file)
    except LastmileError as exc:
        raise _fail(exc) from exc
    frame = LocalFrame(config.lat, config.lon) if config else None
    table = Table(title=f"{zones_file}: {len(zones)} zones")
    for column in ("id", "name", "kind", "applies to", "shape", "altitude m", "active (UTC)"):
        table.add_column(column)
    for z in zones:
        shape = f"circle r={z.radius_m:.0f} m" if z.radius_m else z.geometry.geom_type.lower()
        if frame is not None:
            shape += f", {zone_geometry_xy(z, frame).area / 1e6:.2f} km²"
        band = (
            f"{z.floor_m or 0:.0f}–{z.ceiling_m:.0f}"
            if z.ceiling_m
            else (f"≥ {z.floor_m:.0f}" if z.floor_m else "all")
        )
        active = "always"
        if z.active_from or z.active_until:
            active = f"{_utc(z.active_from)} → {_utc(z.active_until)}"
        table.add_row(z.id, z.name, str(z.kind), ", ".join(sorted(z.applies_to)), shape, band, active)
    console.print(table)
    if config is not None:
        console.print(
            f"[green]ok:[/] the station '{escape(config.name)}' is outside every exclusion zone of "
            f"{escape(str(zones_file))}"
        )


def _check_station_outside(name: str, lat: float, lon: float, zones_file: Path) -> None:
    """The station's position against the checked file's zones (not the zones its own file names)."""
    from controller.errors import InputError
    from geofences import LocalFrame, load_zones
    from geofences.checks import ZoneIndex

    zones, frame = load_zones(zones_file), LocalFrame(lat, lon)
    for kind in ("drone", "robot"):
        zone = ZoneIndex(zones, frame, kind, altitude_m=0.0).zone_containing(lon, lat)
        if zone is not None:
            raise InputError(
                f"the station '{name}' lies inside exclusion zone '{zone.id}' ({zone.name}) of "
                f"{zones_file} for {kind}s",
                field="station",
            )


def _utc(when: datetime | None, zone: tzinfo = UTC) -> str:
    """A time with its date and its zone, as every command shows times: "2026-12-01 16:42 UTC" (or in the
    station's zone, "2026-12-01 09:42 MST")."""
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if when else "…"


_ASSIGN_COLUMNS = ("package", "decision", "vehicle", "ETA", "energy Wh", "margin Wh", "reasons / hints")


def _reasons_text(reasons: list[str], hints: dict[str, dict[str, str]], detoured: bool) -> str:
    """A decision's reason codes and what would have made the package eligible, or "detour"."""
    if not reasons:
        return "detour" if detoured else ""
    said = "; ".join(text for per_kind in hints.values() for text in per_kind.values())
    return ", ".join(reasons) + (f" — {said}" if said else "")


def _register_simulators() -> None:
    """Simulator commands live in `sitl` (they speak the wire protocols; the controller is not involved)."""
    from sitl.copter.cli import copter
    from sitl.robot.cli import robot

    sitl_app.command("copter", help="Serve simulated ArduCopter-compatible drones over MAVLink.")(copter)
    sitl_app.command("robot", help="Run simulated VDA 5050 sidewalk robots against an MQTT broker.")(robot)


_register_simulators()


def _register_operator_commands() -> None:
    """Operator commands talk to a running `lastmile serve` over its API."""
    from controller.cli_ops import register

    register(app)


_register_operator_commands()
__import__("controller.cli_token").cli_token.register(app)  # lastmile token: API tokens as salted hashes


def _register_keys() -> None:
    """`lastmile keys`: MAVLink 2 signing keys for the drones (controller/cli_keys.py)."""
    from controller.cli_keys import register

    register(app)


_register_keys()


def main() -> None:  # pragma: no cover - console entry point
    app()
