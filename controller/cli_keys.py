"""`lastmile keys`: MAVLink 2 signing keys for the station's drones: make one, give it to a drone.

A key is 32 random bytes kept as 64 hex digits in a file only its owner may read (mode 0600); the
station file names it per drone (`signing_key_file`, or `signing_key_env`). A drone takes a key from
SETUP_SIGNING only where it accepts unsigned messages, channel 0 (USB; SITL's SERIAL0 port) or any link
while it holds no key, or signed with the key it holds (rotation): ArduPilot's GCS_Signing.cpp. So:

    lastmile keys generate --out keys/d1.key
    lastmile keys provision --vehicle d1 --connect tcp:192.168.1.20:5760 --key keys/d1.key
    lastmile keys provision --vehicle d1 --connect tcp:10.0.0.7:5762 \\
        --key keys/d1-2027.key --current-key keys/d1.key          # rotate over a signed link

Errors name the option and the reason and exit with 2 (a drone that cannot be reached: 1).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from geofences.errors import LastmileError
from vehicles.errors import LinkError
from vehicles.mavlink.signing import KeyFileError, generate_key_file, key_id, read_key_file

__all__ = ["generate", "keys_app", "provision", "register"]

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error is one line: paths and commands stay whole
keys_app = typer.Typer(help="MAVLink 2 signing keys: generate, provision to drones.", no_args_is_help=True)


def _fail(where: str, reason: object, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(where)}: {escape(str(reason))}")  # "[...]" is no markup
    return typer.Exit(code=code)


@keys_app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="file to write the key to (created with mode 0600)")],
    force: Annotated[bool, typer.Option("--force", help="replace an existing key file")] = False,
) -> None:
    """Make a new random 32-byte signing key (64 hex digits) in a file only you can read."""
    try:
        key = generate_key_file(out, overwrite=force)
    except KeyFileError as exc:
        raise _fail("--out", exc) from None
    # The key id names the key in logs and answers without giving it away.
    console.print(f"key {key_id(key)} written to {out} (mode 0600)")


@keys_app.command()
def provision(
    connect: Annotated[
        str, typer.Option("--connect", help="the drone's link: tcp:HOST:PORT, udpin:HOST:PORT, udpout:...")
    ],
    key: Annotated[Path | None, typer.Option("--key", help="key file to give the drone")] = None,
    vehicle: Annotated[
        str | None,
        typer.Option("--vehicle", help="the drone's id (with --station: takes its key from there)"),
    ] = None,
    station: Annotated[
        Path | None, typer.Option("--station", "-s", help="station TOML naming the drone's key")
    ] = None,
    current_key: Annotated[
        Path | None,
        typer.Option("--current-key", help="the key the drone holds now: rotate over a link that needs it"),
    ] = None,
    sysid: Annotated[
        int | None, typer.Option("--sysid", help="the drone's MAVLink system id (default: first heard)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the drone's heartbeat")] = 10.0,
) -> None:
    """Give a drone its signing key (SETUP_SIGNING) and check that it now signs with it.

    Use a trusted link (USB / SERIAL0, where the drone accepts unsigned messages), or `--current-key`
    to rotate over any link. The drone must be disarmed: ArduPilot ignores SETUP_SIGNING while armed.
    """
    from vehicles.mavlink.driver import provision_key

    new_key, source = _new_key(key, vehicle, station)
    old_key = None
    if current_key is not None:
        try:
            old_key = read_key_file(current_key)
        except KeyFileError as exc:
            raise _fail("--current-key", exc) from None
    try:
        seen = asyncio.run(
            provision_key(
                connect,
                new_key,
                vehicle_id=vehicle or "",
                current_key=old_key,
                target_system=sysid,
                connect_timeout_s=timeout,
            )
        )
    except LinkError as exc:
        raise _fail("--connect", exc, code=1) from None
    except LastmileError as exc:
        raise _fail("--connect", exc) from None
    console.print(
        f"[green]ok:[/] {seen['vehicle']} (system id {seen['sysid']}) now signs with key {key_id(new_key)} "
        f"from {source}; on its links other than USB / SERIAL0 it refuses unsigned messages"
    )


def _new_key(key: Path | None, vehicle: str | None, station: Path | None) -> tuple[bytes, str]:
    """The key to give: from --key, or from the station file's entry for --vehicle."""
    if key is not None:
        try:
            return read_key_file(key), str(key)
        except KeyFileError as exc:
            raise _fail("--key", exc) from None
    if station is None or vehicle is None:
        raise _fail("--key", "give a key file, or --station and --vehicle to take the drone's key from there")
    from controller.station import load_station

    try:
        config = load_station(station)
    except LastmileError as exc:
        raise _fail("--station", exc) from None
    entry = next((v for v in config.fleet if v.id == vehicle), None)
    if entry is None:
        raise _fail("--vehicle", f"no vehicle '{vehicle}' in {station}")
    try:
        found = entry.signing_key()
    except LastmileError as exc:
        raise _fail("--station", exc) from None
    if found is None:
        raise _fail("--vehicle", f"'{vehicle}' has no signing_key_file or signing_key_env in {station}")
    return found, f"{station} ({vehicle})"


def register(app: typer.Typer) -> None:
    """Add `lastmile keys ...` to the main app."""
    app.add_typer(keys_app, name="keys")
