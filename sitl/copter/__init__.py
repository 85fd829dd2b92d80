"""An ArduCopter-compatible simulated drone over MAVLink: many per process, with a speed-up factor.

    async with SimCopterFleet(count=2, base_port=0, speedup=20) as fleet:
        url = fleet.urls()[0]          # "tcp:127.0.0.1:<port>", MAV_SYSID 1
        copter = fleet.vehicles[0]     # the truth tests judge a controller against

See docs/sitl.md for what it implements, which ArduPilot behaviour it follows and what it simplifies.
"""

from sitl.copter.fleet import SimCopterFleet
from sitl.copter.modes import Mode
from sitl.copter.vehicle import SimCopter

__all__ = ["Mode", "SimCopter", "SimCopterFleet"]
