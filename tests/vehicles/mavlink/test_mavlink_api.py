"""The driver's public surface: what other packages may import (changing it is a deliberate act)."""

from __future__ import annotations

import inspect

import vehicles.mavlink as mav
from controller.missions import drone as delivery


def test_exported_members_are_exactly_these():
    assert set(mav.__all__) == {
        "COPTER_MODES", "FENCE", "MISSION", "RALLY", "ArmedChanged", "BatteryFailsafe", "CommandError",
        "Drone", "DroneConnection", "DroneDriver", "DroneEvent", "DroneState", "FenceBreach", "FenceError",
        "FencePlan", "Link", "LinkError", "LinkLost", "LinkRestored", "MissionError", "MissionItem",
        "MissionItemReached", "MissionMismatchError", "ModeChanged", "ParamError", "PreArmError",
        "ProtocolError", "StatusText", "TcpLink", "UdpLink", "compare_items", "fence_from_zones",
        "key_from_passphrase", "open_link", "parse_url", "NotReadyError", "Firmware",
    }  # fmt: skip
    for name in mav.__all__:
        assert getattr(mav, name) is not None


def test_errors_sit_in_the_project_tree():
    from geofences.errors import LastmileError
    from vehicles.errors import ProtocolError, VehicleError

    assert issubclass(mav.PreArmError, mav.CommandError)
    assert issubclass(mav.CommandError, ProtocolError)
    assert issubclass(mav.LinkError, VehicleError) and issubclass(VehicleError, LastmileError)


def test_delivery_entry_points_keep_their_signatures():
    assert set(delivery.__all__) >= {
        "DeliveryPlan",
        "FencePlan",
        "abort_delivery",
        "fence_from_zones",
        "fly_delivery",
    }
    params = inspect.signature(delivery.fly_delivery).parameters
    assert list(params)[:2] == ["drone", "plan"] and params["on_event"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(delivery.fence_from_zones).parameters)[:2] == ["zones", "ceiling_m"]
