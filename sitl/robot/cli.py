"""`lastmile sitl robot`: run simulated VDA 5050 sidewalk robots against an MQTT broker.

    lastmile sitl robot --count 10 --broker mqtt://127.0.0.1:1883 --speedup 10 --password secret
    lastmile sitl robot --broker mqtts://broker.example:8883 --ca-file ca.crt --password secret

`mqtts://` speaks TLS: the broker's certificate must chain to `--ca-file` (the system's CAs without it) and
name the URL's host; `--client-cert`/`--client-key` answer a broker that asks for a certificate.

Robots are named `<prefix>001`, `<prefix>002`, ... and log in with their serial number as MQTT username
(the layout `sitl.broker.Broker` and docs/robots.md use). Per-robot passwords can come from a JSON file
`{"robot-001": "pw", ...}`. Prints `ready <n> robots` once all are online; SIGTERM/Ctrl-C says OFFLINE.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import typer

from sitl.robot.client import RobotFleet
from sitl.robot.sim import WALKING_SPEED, SimRobot
from sitl.robot.wire import WIRE
from sitl.tls import client_context

__all__ = ["main", "parse_broker_url", "robot"]


def parse_broker_url(url: str) -> tuple[str, int, str | None, str | None]:
    """`mqtt[s]://[user:password@]host[:port]` -> (host, port, user, password); ValueError names the problem.

    The default port is MQTT's registered one: 1883, or 8883 for `mqtts://` (TLS).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp", "mqtts"):
        raise ValueError(
            f"broker={url!r}: scheme must be mqtt:// or mqtts:// for TLS (got {parts.scheme or 'none'!r})"
        )
    if not parts.hostname:
        raise ValueError(f"broker={url!r}: no host")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ValueError(f"broker={url!r}: port is not a number in 1..65535") from None
    return parts.hostname, port, parts.username, parts.password


def robot(
    count: int = typer.Option(1, "--count", min=1, help="How many robots to simulate."),
    broker: str = typer.Option(
        "mqtt://127.0.0.1:1883",
        help="Broker URL: mqtt://host:port (mqtts:// for TLS), optionally mqtt://user:password@host:port.",
    ),
    ca_file: Path | None = typer.Option(  # noqa: B008 - typer reads options from defaults
        None,
        "--ca-file",
        help="mqtts://: PEM CA the broker's certificate must chain to (default: system CAs).",
    ),
    client_cert: Path | None = typer.Option(  # noqa: B008
        None, "--client-cert", help="mqtts://: PEM client certificate, for brokers that ask for one."
    ),
    client_key: Path | None = typer.Option(  # noqa: B008
        None, "--client-key", help="mqtts://: PEM key of --client-cert."
    ),
    speedup: float = typer.Option(1.0, min=0.001, help="Simulated seconds per real second."),
    version: str = typer.Option("2.1.0", help="VDA 5050 version: 2.0.0, 2.1.0 or 3.0.0."),
    map_id: str = typer.Option("station", "--map-id", help="The robots' mapId (their map's name)."),
    manufacturer: str = typer.Option("lastmile", help="Manufacturer topic level."),
    prefix: str = typer.Option("robot-", help="Serial numbers are <prefix>001, <prefix>002, ..."),
    first: int = typer.Option(1, min=0, help="Number of the first robot."),
    password: str | None = typer.Option(None, help="One password for every robot (demos)."),
    credentials: Path | None = typer.Option(  # noqa: B008 - typer reads options from defaults
        None, help='JSON file {"serial": "password"} for per-robot logins.'
    ),
    state_interval: float = typer.Option(1.0, min=0.01, help="Seconds between periodic state messages."),
    keepalive: int = typer.Option(5, min=1, help="MQTT keepalive (s); the last will fires within 1.5x."),
    speed: float = typer.Option(WALKING_SPEED, min=0.1, help="Robot speed in m/s (walking pace)."),
    x: float = typer.Option(0.0, help="Start x (m east of the station)."),
    y: float = typer.Option(0.0, help="Start y (m north of the station)."),
) -> None:
    """Run simulated VDA 5050 sidewalk robots until interrupted."""
    try:
        host, port, url_user, url_password = parse_broker_url(broker)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--broker") from None
    tls = None
    if urlsplit(broker).scheme == "mqtts":
        if (client_cert is None) != (client_key is None):
            raise typer.BadParameter(
                "give --client-cert and --client-key together", param_hint="--client-cert"
            )
        try:
            tls = client_context(ca_file, client_cert, client_key)
        except ValueError as exc:
            hint = "--ca-file" if str(exc).startswith("CA file") else "--client-cert"
            raise typer.BadParameter(str(exc), param_hint=hint) from None
    else:
        for hint, given in (
            ("--ca-file", ca_file),
            ("--client-cert", client_cert),
            ("--client-key", client_key),
        ):
            if given is not None:
                raise typer.BadParameter(
                    f"{hint} needs an mqtts:// broker URL (got {broker})", param_hint=hint
                )
    if version not in WIRE:
        raise typer.BadParameter(f"{version!r}: expected one of {', '.join(WIRE)}", param_hint="--version")
    if not map_id:
        raise typer.BadParameter("must be a non-empty map name", param_hint="--map-id")
    serials = [f"{prefix}{i:03d}" for i in range(first, first + count)]
    logins: dict[str, tuple[str, str]] = {}
    table: dict[str, str] = {}
    if credentials is not None:
        try:
            table = json.loads(credentials.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise typer.BadParameter(f"{credentials}: {exc}", param_hint="--credentials") from None
    for serial in serials:
        secret = table.get(serial, password if password is not None else url_password)
        if secret is not None:
            logins[serial] = (url_user if url_user and count == 1 else serial, secret)
    sims = [
        SimRobot(serial, manufacturer=manufacturer, version=version, speed=speed, x=x, y=y, map_id=map_id)
        for serial in serials
    ]
    fleet = RobotFleet(
        sims,
        host,
        port,
        credentials=logins,
        speedup=speedup,
        state_interval_s=state_interval,
        keepalive=keepalive,
        tls_context=tls,
    )
    asyncio.run(_serve(fleet))


async def _serve(fleet: RobotFleet) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fleet.start()
    print(f"ready {len(fleet.clients)} robots", flush=True)
    try:
        await stop.wait()
    finally:
        await fleet.stop()
        print("stopped", flush=True)


def main() -> None:
    """`python -m sitl.robot.cli ...` without the lastmile console."""
    typer.run(robot)


if __name__ == "__main__":
    sys.exit(main())
