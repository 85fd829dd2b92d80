"""The driver's public surface, as the controller and the station service use it."""

from __future__ import annotations

import inspect

import vehicles.vda5050 as vda5050
from controller.missions import robot as missions_robot


def test_exported_members_exist():
    assert sorted(vda5050.__all__) == sorted(set(vda5050.__all__))
    for name in vda5050.__all__:
        assert hasattr(vda5050, name), name


def test_signatures_the_station_relies_on():
    add = inspect.signature(vda5050.FleetLink.add_robot)
    assert {"serial_number", "manufacturer", "version", "map_id", "battery_wh"} <= set(add.parameters)
    drive = inspect.signature(missions_robot.drive_delivery)
    assert list(drive.parameters)[:2] == ["robot", "plan"] and "on_event" in drive.parameters
    assert inspect.iscoroutinefunction(missions_robot.drive_delivery)
    for method in ("send_order", "release", "cancel_order", "pause", "resume", "request_state", "wait_until"):
        assert inspect.iscoroutinefunction(getattr(vda5050.RobotHandle, method)), method
