"""Parameters and firmware versions as ArduCopter has them: the 4.7 MAV_SYSID / MAV_GCS_SYSID names (4.6
and older: SYSID_THISMAV / SYSID_MYGCS), AUTOPILOT_VERSION's flight_sw_version, silence for unknown names,
and the release devices' outputs (SERVOn_FUNCTION)."""

from __future__ import annotations

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet
from sitl.copter.params import DEFAULTS, ParamStore

from .conftest import CopterClient

M = mavlink


async def version(client: CopterClient, target: int = 1) -> int:
    since = client.mark()
    result = await client.command(
        M.MAV_CMD_REQUEST_MESSAGE, M.MAVLINK_MSG_ID_AUTOPILOT_VERSION, target=target
    )
    assert result == M.MAV_RESULT_ACCEPTED
    return (await client.expect("AUTOPILOT_VERSION", since=since)).flight_sw_version


@pytest.mark.parametrize(
    ("firmware", "sysid", "gcs", "gone", "sw_version"),
    [
        ("4.7", "MAV_SYSID", "MAV_GCS_SYSID", "SYSID_THISMAV", (4, 7, 0, M.FIRMWARE_VERSION_TYPE_DEV)),
        ("4.6", "SYSID_THISMAV", "SYSID_MYGCS", "MAV_SYSID", (4, 6, 3, M.FIRMWARE_VERSION_TYPE_OFFICIAL)),
        ("4.4", "SYSID_THISMAV", "SYSID_MYGCS", "MAV_SYSID", (4, 4, 4, M.FIRMWARE_VERSION_TYPE_OFFICIAL)),
    ],
)
async def test_identity_parameters_and_version_follow_the_firmware(firmware, sysid, gcs, gone, sw_version):
    async with SimCopterFleet(2, base_port=0, speedup=20, boot_s=0, firmware=firmware) as fleet:
        client = await CopterClient.connect(fleet.tcp_ports[1])
        try:
            major, minor, patch, kind = sw_version
            assert await version(client, target=2) == major << 24 | minor << 16 | patch << 8 | kind
            since = client.mark()
            client.mav.param_request_read_send(2, 1, sysid.encode(), -1)
            value = await client.expect("PARAM_VALUE", lambda m: m.param_id == sysid, since=since)
            assert value.param_value == 2 and value.param_type == M.MAV_PARAM_TYPE_INT16
            assert value.param_index == 65535  # asked by name: the reply carries the -1 it was asked with
            client.mav.param_request_read_send(2, 1, gone.encode(), -1)
            client.mav.param_request_read_send(2, 1, gcs.encode(), -1)
            echo = await client.expect("PARAM_VALUE", lambda m: m.param_id == gcs, since=since)
            assert echo.param_value == 255
            assert not [m for m in client.log[since:] if getattr(m, "param_id", "") == gone]
        finally:
            await client.close()


def test_default_firmware_is_4_7_master():
    assert ParamStore().firmware.flight_sw_version == 0x04070000  # 4.7.0, FIRMWARE_VERSION_TYPE_DEV (0)
    with pytest.raises(ValueError, match="firmware"):
        SimCopterFleet(1, firmware="4.3")


async def test_the_gcs_failsafe_counts_heartbeats_from_the_4_6_gcs_parameter():
    params = {"SYSID_MYGCS": 200, "FS_GCS_ENABLE": 1}
    async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0, firmware="4.6", params=params) as fleet:
        copter = fleet.vehicles[0]
        client = await CopterClient.connect(fleet.tcp_ports[0], sysid=200)
        try:
            client.heartbeat()
            await copter.wait_for(lambda c: c.failsafes.gcs_last_seen is not None, timeout=2)
        finally:
            await client.close()


async def test_unknown_parameters_get_no_answer_at_all(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    """GCS_Param.cpp: AP_Param::find fails, handle_param_set / handle_param_request_read just return. The
    vehicle answers in order, so once a later read is answered an unknown name's answer would have come."""
    since = copter_client.mark()
    copter_client.mav.param_set_send(1, 1, b"NO_SUCH_PARAM", 3, M.MAV_PARAM_TYPE_REAL32)
    copter_client.mav.param_request_read_send(1, 1, b"NO_SUCH_PARAM", -1)
    copter_client.mav.param_set_send(1, 1, b"RTL_ALT", float("nan"), M.MAV_PARAM_TYPE_INT32)
    copter_client.mav.param_request_read_send(1, 1, b"RTL_ALT", -1)
    rtl_alt = await copter_client.expect("PARAM_VALUE", lambda m: m.param_id == "RTL_ALT", since=since)
    assert rtl_alt.param_value == 1500  # NaN is not set either
    answers = [m for m in copter_client.log[since:] if m.get_type() in ("PARAM_VALUE", "STATUSTEXT")]
    assert answers == [rtl_alt]
    # by index: the reply names the parameter and carries the index
    names = copter_fleet.vehicles[0].params.names()
    copter_client.mav.param_request_read_send(1, 1, b"", 3)
    by_index = await copter_client.expect("PARAM_VALUE", lambda m: m.param_index == 3)
    assert by_index.param_id == names[3]


def test_overrides_with_unknown_names_raise():
    with pytest.raises(KeyError, match="NO_SUCH_PARAM"):
        ParamStore({"NO_SUCH_PARAM": 1})
    with pytest.raises(KeyError, match="SYSID_THISMAV"):
        ParamStore({"SYSID_THISMAV": 3})  # a 4.6 name on 4.7
    with pytest.raises(KeyError, match="MAV_SYSID"):
        ParamStore({"MAV_SYSID": 3}, firmware="4.5")


def test_release_devices_and_their_outputs_are_configured_as_ardupilot_needs():
    values = {name: d.default for name, d in DEFAULTS.items()}
    assert [values[f"SERVO{n}_FUNCTION"] for n in range(1, 17)] == [33, 34, 35, 36, 0, 0, 0, 0, 28, 88] + [
        0
    ] * 6
    assert (values["GRIP_ENABLE"], values["GRIP_TYPE"], values["WINCH_TYPE"]) == (1, 1, 1)  # servo, PWM
    assert values["PLDP_THRESH"] == 0.9 and values["PLDP_RNG_MAX"] == 0 and values["PLDP_DELAY"] == 0
    assert values["PLDP_SPEED_DN"] == 0  # m/s; 0 = LAND_SPEED
