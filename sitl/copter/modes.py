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

# Modes that run the horizontal position controller every loop, on the ground too (make_safe_ground_handling
# and loiter_nav->init_target call AC_PosControl::init_NE_controller / update_NE_controller), so that
# AC_PosControl::is_active_NE() is true and GCS_MAVLINK_Copter::base_mode() adds MAV_MODE_FLAG_GUIDED_ENABLED.
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

# Modes with the pilot's throttle (has_manual_throttle() in ArduCopter/mode.h): no altitude estimate needed.
MANUAL_THROTTLE = frozenset({Mode.STABILIZE, Mode.ACRO, Mode.SYSTEMID})

# Modes that need a position estimate (requires_GPS() in ArduCopter/mode.h).
NEEDS_POSITION = frozenset(
    {Mode.AUTO, Mode.GUIDED, Mode.LOITER, Mode.RTL, Mode.POSHOLD, Mode.BRAKE, Mode.SMART_RTL, Mode.CIRCLE}
)


# Mode::name() where it differs from the enum name (ArduCopter/mode.h).
_ARDUPILOT_NAMES = {Mode.SMART_RTL: "SMARTRTL"}


def mode_name(number: int, *, ardupilot: bool = False) -> str:
    """Name for a custom_mode number, or `MODE(n)` if it is not an ArduCopter mode; `ardupilot=True` gives
    the name ArduCopter's texts use (Mode::name(), e.g. "SMARTRTL")."""
    try:
        mode = Mode(number)
    except ValueError:
        return f"MODE({number})"
    return _ARDUPILOT_NAMES.get(mode, mode.name) if ardupilot else mode.name
