"""`lastmile sitl copter`: run simulated copters until Ctrl-C (the lead registers `copter` with typer)."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from sitl.copter.boot import DEFAULT_BOOT_S
from sitl.copter.fleet import SimCopterFleet
from sitl.copter.params import DEFAULT_FIRMWARE, FIRMWARES


def parse_home(text: str) -> tuple[float, float, float, float]:
    """ "LAT,LON,ALT,HDG" (ArduPilot SITL's --home format) -> floats; ALT and HDG default to 0."""
    parts = [p.strip() for p in text.split(",")]
    if not 2 <= len(parts) <= 4:
        raise typer.BadParameter("home must be LAT,LON[,ALT[,HDG]]")
    try:
        values = [float(p) for p in parts] + [0.0] * (4 - len(parts))
    except ValueError as exc:
        raise typer.BadParameter(f"home must be numbers: {exc}") from None
    lat, lon, alt, hdg = values
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise typer.BadParameter("home latitude/longitude out of range")
    return lat, lon, alt, hdg


async def _serve(fleet: SimCopterFleet) -> None:
    async with fleet:
        for v, url, telemetry in zip(fleet.vehicles, fleet.urls(), fleet.telemetry_urls(), strict=True):
            sysid = f"{v.params.wire_name('MAV_SYSID')} {v.sysid}"
            typer.echo(f"copter {v.sysid}: {url} ({sysid}), telemetry {telemetry}")
        await asyncio.Event().wait()


def copter(
    count: int = typer.Option(1, "--count", "-n", min=1, help="How many copters."),
    home: str = typer.Option("33.4484,-112.2590,300,0", "--home", help="LAT,LON,ALT(m AMSL),HEADING(deg)."),
    speedup: float = typer.Option(1.0, "--speedup", min=0.01, help="Simulated seconds per wall second."),
    base_port: int = typer.Option(
        5760, "--base-port", help="TCP port of copter 1; copter i uses base+10*(i-1)."
    ),
    udp_out: list[str] | None = typer.Option(  # noqa: B008 (typer idiom)
        None, "--udp-out", help="HOST:PORT to also send MAVLink to (repeatable)."
    ),
    firmware: str = typer.Option(
        DEFAULT_FIRMWARE, "--firmware", help=f"ArduCopter version to imitate: {', '.join(FIRMWARES)}."
    ),
    boot_s: float = typer.Option(
        DEFAULT_BOOT_S, "--boot-s", min=0.0, help="Simulated seconds until the EKF has a position (0: none)."
    ),
) -> None:
    """Run ArduCopter-compatible simulated copters (MAVLink over TCP) until Ctrl-C."""
    if firmware not in FIRMWARES:
        raise typer.BadParameter(f"--firmware must be one of {', '.join(FIRMWARES)}")
    fleet = SimCopterFleet(
        count, home=parse_home(home), speedup=speedup, base_port=base_port, udp_out=udp_out or (),
        boot_s=boot_s, firmware=firmware,
    )  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(fleet))


def main() -> None:  # pragma: no cover - convenience entry: python -m sitl.copter.cli
    typer.run(copter)


if __name__ == "__main__":  # pragma: no cover
    main()
