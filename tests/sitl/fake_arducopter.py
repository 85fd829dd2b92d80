#!/usr/bin/env python3
"""A stand-in for ArduPilot's `arducopter` SITL binary, for testing the launcher where none is built.

It accepts the same command line (libraries/AP_HAL_SITL/SITL_cmdline.cpp options the launcher uses),
loads the --defaults files, serves the built-in simulator on TCP base-port + 10*I with --sysid, and
announces SERIAL0 with ArduPilot's own words, so `sitl.ardupilot.ArduPilotSitl` is exercised end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sitl.copter import SimCopterFleet
from sitl.copter.params import DEFAULTS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-S", "--synthetic-clock", action="store_true")
    ap.add_argument("-w", "--wipe", action="store_true")
    ap.add_argument("--model", required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--defaults", default="")
    ap.add_argument("--base-port", type=int, default=5760)
    ap.add_argument("-I", "--instance", type=int, default=0)
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--sysid", type=int, default=1)
    args = ap.parse_args()
    params: dict[str, float] = {}
    for path in filter(None, args.defaults.split(",")):
        for line in open(path):  # noqa: SIM115 - a tiny script
            parts = line.split()
            if len(parts) == 2 and parts[0] in DEFAULTS:
                params[parts[0]] = float(parts[1])
    home = tuple(float(x) for x in args.home.split(","))
    port = args.base_port + 10 * args.instance

    async def run() -> None:
        fleet = SimCopterFleet(
            1, home=home, speedup=args.speedup, base_port=port, params=params, first_sysid=args.sysid
        )
        async with fleet:
            print(f"Serial port 0 on TCP port {fleet.tcp_ports[0]}", file=sys.stderr, flush=True)
            print("Waiting for connection ....", flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
