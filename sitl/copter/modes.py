"""ArduCopter flight modes as seen on the wire (HEARTBEAT.custom_mode).

Numbers from ArduPilot: ArduCopter/mode.h (enum class Mode::Number).
"""

from __future__ import annotations

from enum import IntEnum


class Mode(IntEnum):
    """ArduCopter custom_mode numbers (ArduCopter/mode.h)."""

    STABILIZE = 0
    ACRO = 1
    ALT_HOLD = 2
    AUTO = 3
    GUIDED = 4
    LOITER = 5
    RTL = 6
    CIRCLE = 7
    LAND = 9
    DRIFT = 11
    SPORT = 13
    FLIP = 14
    AUTOTUNE = 15
    POSHOLD = 16
    BRAKE = 17
    THROW = 18
    AVOID_ADSB = 19
    GUIDED_NOGPS = 20
    SMART_RTL = 21
    FLOWHOLD = 22
    FOLLOW = 23
    ZIGZAG = 24
    SYSTEMID = 25
    AUTOROTATE = 26
    AUTO_RTL = 27


# Modes this simulator flies; others are refused with COMMAND_ACK FAILED / UNSUPPORTED.
SUPPORTED = frozenset(
    {
        Mode.STABILIZE,
        Mode.ALT_HOLD,
        Mode.AUTO,
        Mode.GUIDED,
        Mode.LOITER,
        Mode.RTL,
        Mode.LAND,
        Mode.POSHOLD,
        Mode.BRAKE,
        Mode.SMART_RTL,
    }
)

# Modes reported with MAV_MODE_FLAG_GUIDED_ENABLED: ArduCopter/GCS_MAVLink_Copter.cpp base_mode().
GUIDED_FLAG_MODES = frozenset(
    {
        Mode.AUTO,
        Mode.AUTO_RTL,
        Mode.RTL,
        Mode.LOITER,
        Mode.AVOID_ADSB,
        Mode.FOLLOW,
        Mode.GUIDED,
        Mode.CIRCLE,
        Mode.POSHOLD,
        Mode.BRAKE,
        Mode.SMART_RTL,
    }
)

# Modes that may be armed from the GCS: ArduCopter/mode.h allows_arming() (AUTO, RTL, LAND, BRAKE,
# SMART_RTL refuse; GUIDED and the manual/position-hold modes accept).
ARMABLE = frozenset({Mode.STABILIZE, Mode.ALT_HOLD, Mode.GUIDED, Mode.LOITER, Mode.POSHOLD})

# Modes that need a position estimate (requires_GPS() in ArduCopter/mode.h).
NEEDS_POSITION = frozenset(
    {Mode.AUTO, Mode.GUIDED, Mode.LOITER, Mode.RTL, Mode.POSHOLD, Mode.BRAKE, Mode.SMART_RTL, Mode.CIRCLE}
)


def mode_name(number: int) -> str:
    """Name for a custom_mode number, or `MODE(n)` if it is not an ArduCopter mode."""
    try:
        return Mode(number).name
    except ValueError:
        return f"MODE({number})"
