"""Which ArduPilot the drone runs, and the parameter names that version uses.

AUTOPILOT_VERSION.flight_sw_version packs the version as ArduPilot's AP_FWVersion does
(libraries/GCS_MAVLink/GCS_Common.cpp `send_autopilot_version`): major << 24 | minor << 16 | patch << 8 |
FIRMWARE_VERSION_TYPE (0 dev, 64 alpha, 128 beta, 192 rc, 255 official).

ArduCopter 4.7 renamed the GCS identity parameters (libraries/GCS_MAVLink/GCS.cpp `MAV_SYSID`,
`MAV_GCS_SYSID`; ArduCopter/Parameters.cpp converts the old `SYSID_THISMAV` / `SYSID_MYGCS` values on
upgrade). The driver speaks the 4.7 names and asks older firmware for the old ones; a name the vehicle does
not have is silently ignored by ArduPilot (GCS_Param.cpp), so sending the wrong one would look like a lost
reply.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RENAMED_IN_4_7", "Firmware"]

# 4.7 name -> the name in ArduCopter 4.6 and older
RENAMED_IN_4_7: dict[str, str] = {"MAV_SYSID": "SYSID_THISMAV", "MAV_GCS_SYSID": "SYSID_MYGCS"}
_TYPES = {0: "dev", 64: "alpha", 128: "beta", 192: "rc", 255: "official"}


@dataclass(frozen=True)
class Firmware:
    """An ArduPilot release: (major, minor, patch) and its type ("dev", "beta", "official", ...)."""

    major: int
    minor: int
    patch: int = 0
    kind: str = "official"

    @classmethod
    def from_flight_sw_version(cls, value: int) -> Firmware:
        """Unpack AUTOPILOT_VERSION.flight_sw_version."""
        kind = value & 0xFF
        major, minor, patch = (value >> 24) & 0xFF, (value >> 16) & 0xFF, (value >> 8) & 0xFF
        return cls(major, minor, patch, _TYPES.get(kind, str(kind)))

    @property
    def version(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return text if self.kind == "official" else f"{text}-{self.kind}"

    def param_name(self, name: str) -> str:
        """The name this firmware uses for a parameter given by its 4.7 name."""
        if self.version < (4, 7, 0):
            return RENAMED_IN_4_7.get(name, name)
        return name
