#!/usr/bin/env python3
"""A stand-in for ArduPilot's `arducopter` SITL binary, for testing the launcher where none is built.

It takes the command line the launcher uses and treats it as ArduPilot 4.7 does
(libraries/AP_HAL_SITL/SITL_cmdline.cpp): `-I N` shifts the base port by 10*N only while the base port is
still the default 5760; `--speedup` and `--sysid` are parameter defaults that a defaults file overrides; a
defaults file's unknown names are ignored without a word (AP_Param.cpp `read_param_defaults_file`). It
serves the built-in simulator on that port and announces SERIAL0 with 4.5+'s own words
(UARTDriver.cpp `_tcp_start_connection`), or 4.4's with `--old-ready-line`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sitl.copter import SimCopterFleet
from sitl.copter.params import DEFAULTS

BASE_PORT = 5760


def serial0_port(argv: list[str], base_port: int | None, instance: int) -> int:
    """SITL_cmdline.cpp: `-I` adds 10*I to the base port only if it is still the default at that point."""
    port = BASE_PORT
    for i, arg in enumerate(argv):
        if arg == "--base-port":
            port = int(argv[i + 1])
        elif arg in ("-I", "--instance") and port == BASE_PORT:
            port += 10 * int(argv[i + 1])
    return port


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-S", "--synthetic-clock", action="store_true")
    ap.add_argument("-w", "--wipe", action="store_true")
    ap.add_argument("--model", required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--defaults", default="")
    ap.add_argument("--base-port", type=int, default=None)
    ap.add_argument("-I", "--instance", type=int, default=0)
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--sysid", type=int, default=1)
    ap.add_argument("--serial1", default="tcp:2")
    ap.add_argument("--serial2", default="tcp:3")
    ap.add_argument("--old-ready-line", action="store_true")
    args = ap.parse_args()
    params: dict[str, float] = {}
    for path in filter(None, args.defaults.split(",")):
        for line in open(path):  # noqa: SIM115 - a tiny script
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] in DEFAULTS:
                params[parts[0]] = float(parts[1])
    speedup = params.pop("SIM_SPEEDUP", args.speedup)
    home = tuple(float(x) for x in args.home.split(","))
    port = serial0_port(sys.argv[1:], args.base_port, args.instance)

    async def run() -> None:
        fleet = SimCopterFleet(
            1, home=home, speedup=speedup, base_port=port, params=params, first_sysid=args.sysid
        )
        async with fleet:
            word = "Serial port 0" if args.old_ready_line else "SERIAL0"
            for n, device in ((1, args.serial1), (2, args.serial2)):
                if device.startswith("tcp:"):
                    print(f"SERIAL{n} on TCP port {port + int(device[4:])}", file=sys.stderr, flush=True)
            print(f"{word} on TCP port {fleet.tcp_ports[0]}", file=sys.stderr, flush=True)
            print("Waiting for connection ....", flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
