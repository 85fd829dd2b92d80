"""The public surface other packages build on: names, signatures and the truth attributes."""

from __future__ import annotations

import inspect

import sitl.copter
from sitl.copter import SimCopter, SimCopterFleet
from sitl.copter.boot import DEFAULT_BOOT_S


def test_exported_members():
    assert sorted(sitl.copter.__all__) == ["Mode", "SimCopter", "SimCopterFleet"]


def test_fleet_signature_keeps_its_keywords():
    params = inspect.signature(SimCopterFleet).parameters
    assert list(params)[:1] == ["count"]
    for name in (
        "home",
        "speedup",
        "base_port",
        "host",
        "udp_out",
        "params",
        "batteries",
        "boot_s",
        "firmware",
    ):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["base_port"].default == 5760 and params["speedup"].default == 1.0
    # copters boot by default, as ArduCopter 4.7 (master) does
    assert params["boot_s"].default == DEFAULT_BOOT_S > 0 and params["firmware"].default == "4.7"


async def test_a_copter_exposes_the_truth_tests_read():
    async with SimCopterFleet(1, base_port=0) as fleet:
        assert not fleet.vehicles[0].ready  # booting
    async with SimCopterFleet(1, base_port=0, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        assert copter.ready
        assert isinstance(copter, SimCopter) and copter.sysid == 1
        assert (copter.mode, copter.armed, copter.alt_m, copter.groundspeed_mps) == (
            "STABILIZE",
            False,
            0.0,
            0.0,
        )
        assert (copter.lat, copter.lon) == (33.4484, -112.2590)
        assert copter.battery_remaining == 1.0 and copter.energy_used_wh == 0.0
        assert copter.payload_kg == 0.0 and copter.payload_released_at is None
        assert copter.track == [(33.4484, -112.259, 0.0)] and copter.statustexts == []
        for hook in ("set_battery", "set_payload", "set_wind", "wait_for"):
            assert callable(getattr(copter, hook))
